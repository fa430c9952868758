import { choiceOption, integerOption, parseArgs } from '../src/cli/args.js';
import { UsageError } from '../src/cli/usage-error.js';

const spec = { wait: { type: 'boolean' }, title: { type: 'string' }, help: { type: 'boolean', short: 'h' }, name: { type: 'string', short: 'n' } } as const;

describe('parseArgs', () => {
  it('reads booleans, --opt value, --opt=value, short aliases and positionals in any order', () => {
    expect(parseArgs(['a.mp4', '--wait', '--title', 'My talk', 'b.mp4', '-n=x', '-h'], spec)).toEqual({
      options: { wait: true, title: 'My talk', name: 'x', help: true },
      positionals: ['a.mp4', 'b.mp4'],
    });
    expect(parseArgs(['--title=a=b', '-n', 'y'], spec).options).toEqual({ title: 'a=b', name: 'y' });
  });

  it('keeps everything after -- (and a lone -) as positionals', () => {
    expect(parseArgs(['--', '--wait', '-x'], spec).positionals).toEqual(['--wait', '-x']);
    expect(parseArgs(['-'], spec).positionals).toEqual(['-']);
  });

  it.each([
    [['--colour'], 'unknown option --colour'],
    [['-x'], 'unknown option -x'],
    [['--title'], 'option --title needs a value'],
    [['--title', '--wait'], 'option --title needs a value'],
    [['--wait=yes'], 'option --wait takes no value'],
    [['--title', 'a', '--title', 'b'], 'option --title is given more than once'],
  ])('refuses %j with a usage error naming the problem', (argv, message) => {
    expect(() => parseArgs(argv, spec, 'submit')).toThrow(new UsageError(message));
    try {
      parseArgs(argv, spec, 'submit');
    } catch (error) {
      expect((error as UsageError).command).toBe('submit');
    }
  });
});

describe('option values', () => {
  it('accepts whole numbers in range and names the option otherwise', () => {
    expect(integerOption('clips', '3', 1, 20)).toBe(3);
    expect(integerOption('clips', undefined, 1, 20)).toBeUndefined();
    for (const bad of ['0', '21', '2.5', '-1', 'three', '']) {
      expect(() => integerOption('clips', bad, 1, 20)).toThrow(`--clips must be a whole number from 1 to 20, got "${bad}"`);
    }
  });

  it('accepts listed choices only', () => {
    expect(choiceOption('aspect', '9:16', ['9:16', '1:1'])).toBe('9:16');
    expect(() => choiceOption('aspect', '4:3', ['9:16', '1:1'])).toThrow('--aspect must be one of 9:16, 1:1, got "4:3"');
  });
});
