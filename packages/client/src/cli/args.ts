import { UsageError } from './usage-error.js';

export interface OptionSpec {
  type: 'string' | 'boolean';
  /** One-letter alias, used as `-x`. */
  short?: string;
}

export type OptionSpecs = Record<string, OptionSpec>;

export type ParsedOptions<S extends OptionSpecs> = {
  [K in keyof S]?: S[K]['type'] extends 'boolean' ? boolean : string;
};

export interface ParsedArgs<S extends OptionSpecs> {
  options: ParsedOptions<S>;
  positionals: string[];
}

/**
 * A small parser for `--name value`, `--name=value`, `-n value` and boolean `--flag`; `--` ends
 * the options. Anything unknown, missing or given twice is a {@link UsageError} naming it.
 */
export function parseArgs<S extends OptionSpecs>(argv: readonly string[], specs: S, command?: string): ParsedArgs<S> {
  const options: Record<string, string | boolean> = {};
  const positionals: string[] = [];
  const byShort = new Map(Object.entries(specs).flatMap(([name, spec]) => (spec.short ? [[spec.short, name] as const] : [])));

  for (let index = 0; index < argv.length; index += 1) {
    const arg = argv[index]!;
    if (arg === '--') {
      positionals.push(...argv.slice(index + 1));
      break;
    }
    if (arg === '-' || !arg.startsWith('-')) {
      positionals.push(arg);
      continue;
    }
    const long = arg.startsWith('--');
    const equals = arg.indexOf('=');
    const written = long ? arg.slice(2, equals === -1 ? undefined : equals) : arg.slice(1, equals === -1 ? undefined : equals);
    const name = long ? written : byShort.get(written);
    const spec = name === undefined ? undefined : specs[name];
    if (name === undefined || spec === undefined) {
      throw new UsageError(`unknown option ${long ? '--' : '-'}${written}`, command);
    }
    if (name in options) throw new UsageError(`option --${name} is given more than once`, command);
    const inline = equals === -1 ? undefined : arg.slice(equals + 1);
    if (spec.type === 'boolean') {
      if (inline !== undefined) throw new UsageError(`option --${name} takes no value`, command);
      options[name] = true;
      continue;
    }
    const value = inline ?? argv[index + 1];
    if (value === undefined || (inline === undefined && value.startsWith('--'))) {
      throw new UsageError(`option --${name} needs a value`, command);
    }
    if (inline === undefined) index += 1;
    options[name] = value;
  }
  return { options: options as ParsedOptions<S>, positionals };
}

/** A whole number within bounds, or a {@link UsageError} naming the option. */
export function integerOption(name: string, value: string | undefined, min: number, max: number, command?: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value.trim()) || Number(value) < min || Number(value) > max) {
    throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, got "${value}"`, command);
  }
  return Number(value);
}

/** One of the listed choices, or a {@link UsageError} listing them. */
export function choiceOption<C extends string>(name: string, value: string | undefined, choices: readonly C[], command?: string): C | undefined {
  if (value === undefined) return undefined;
  if (!(choices as readonly string[]).includes(value)) {
    throw new UsageError(`--${name} must be one of ${choices.join(', ')}, got "${value}"`, command);
  }
  return value as C;
}
