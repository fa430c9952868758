import { spawn } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * The batched stdout of createLogger, in a real process (the built package): lines wait at most
 * LOG_FLUSH_MS, come out in order, and none is lost when the process exits on its own, through
 * process.exit, or on an uncaught exception.
 */
const SHARED = pathToFileURL(path.resolve('packages/shared/dist/index.js')).href;

interface Child {
  stdout: () => string;
  exited: Promise<number | null>;
  kill: () => void;
}

/** Runs `body` in a fresh node process with a logger `log` at LOG_FLUSH_MS `flushMs`. */
function run(flushMs: number, body: string): Child {
  const script = `const shared = await import(${JSON.stringify(SHARED)});
const log = shared.createLogger({ name: 'writer-test', flushMs: ${flushMs} });
${body}`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { stdout: () => stdout, exited, kill: () => child.kill('SIGKILL') };
}

const messages = (text: string) =>
  text
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line).msg as string);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('batched log lines (LOG_FLUSH_MS)', () => {
  it('writes a line within the delay, not before, and keeps the order across batches', async () => {
    const child = run(
      2000,
      `log.info('first'); process.stdout.write('{"msg":"logged"}\\n');
setTimeout(() => { for (let i = 0; i < 2000; i++) log.info('line ' + i); }, 2500);
setTimeout(() => {}, 8000);`,
    );
    try {
      const deadline = Date.now() + 10_000;
      while (!messages(child.stdout()).includes('logged') && Date.now() < deadline) await sleep(10);
      // The direct write went out at once; the logged line waits for the batch.
      expect(messages(child.stdout())).toEqual(['logged']);
      while (!messages(child.stdout()).includes('first') && Date.now() < deadline) await sleep(10);
      expect(messages(child.stdout())).toEqual(['logged', 'first']);
      // 2,000 lines are far past the 16 K characters that make a batch go out before its delay.
      while (messages(child.stdout()).length < 2002 && Date.now() < deadline) await sleep(10);
      expect(messages(child.stdout())).toEqual(['logged', 'first', ...Array.from({ length: 2000 }, (_, i) => `line ${i}`)]);
    } finally {
      child.kill();
    }
  });

  it('loses nothing when the process ends: on its own, through process.exit, or on an uncaught exception', async () => {
    const ends = {
      'on its own': `for (let i = 0; i < 50; i++) log.info('line ' + i);`,
      'process.exit': `for (let i = 0; i < 50; i++) log.info('line ' + i); log.fatal('line 50'); process.exit(78);`,
      'uncaught exception': `for (let i = 0; i < 51; i++) log.info('line ' + i); setTimeout(() => { throw new Error('boom'); }, 1);`,
    };
    for (const [how, body] of Object.entries(ends)) {
      // A delay far longer than the process lives: only the exit can have written the lines.
      const child = run(60_000, body);
      const code = await child.exited;
      expect({ how, code: code === 0 ? 0 : 'failed' }).toEqual({ how, code: how === 'on its own' ? 0 : 'failed' });
      expect({ how, lines: messages(child.stdout()) }).toEqual({ how, lines: Array.from({ length: how === 'on its own' ? 50 : 51 }, (_, i) => `line ${i}`) });
    }
  });

  it('stamps each line with its ISO 8601 time to the millisecond', async () => {
    const child = run(0, `for (let i = 0; i < 30; i++) { log.info('line'); await new Promise((r) => setTimeout(r, i * 7)); }`);
    await child.exited;
    const lines = child
      .stdout()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { time: string });
    expect(lines).toHaveLength(30);
    let last = 0;
    for (const { time } of lines) {
      expect(time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(new Date(time).toISOString()).toBe(time);
      expect(Math.abs(Date.parse(time) - Date.now())).toBeLessThan(60_000);
      expect(Date.parse(time)).toBeGreaterThanOrEqual(last);
      last = Date.parse(time);
    }
    // The lines span several seconds, so the cached second changed on the way.
    expect(new Set(lines.map(({ time }) => time.slice(0, 19))).size).toBeGreaterThan(1);
  });

  it('writes each line at once with LOG_FLUSH_MS=0', async () => {
    const child = run(0, `log.info('at once'); setTimeout(() => {}, 5000);`);
    try {
      const deadline = Date.now() + 5000;
      while (!messages(child.stdout()).includes('at once') && Date.now() < deadline) await sleep(10);
      expect(messages(child.stdout())).toEqual(['at once']);
    } finally {
      child.kill();
    }
  });
});
