/**
 * A worker's errors while Redis is away: BullMQ passes on every failed reconnect (about one a
 * second per worker); the first is logged with its stack, then only a count now and then.
 */
import { PassThrough } from 'node:stream';
import { connectionErrorsOnce, createLogger } from '@clipline/shared';

function logged(): { lines: { level: number; msg: string; errors?: number }[]; log: (error: Error) => void } {
  const stream = new PassThrough();
  const lines: { level: number; msg: string; errors?: number }[] = [];
  stream.on('data', (chunk) => {
    for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
  });
  return { lines, log: connectionErrorsOnce(createLogger({ name: 'errors', level: 'info', destination: stream })) };
}

const refused = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6399'), { code: 'ECONNREFUSED', syscall: 'connect' });

it('logs the first connection error of an outage, then counts the rest (10th, 100th…), not a line each', async () => {
  const { lines, log } = logged();
  for (let i = 0; i < 150; i += 1) log(refused());
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setTimeout(resolve, 100));
  expect(lines.map((line) => [line.level, line.errors ?? null])).toEqual([
    [50, null],
    [40, 10],
    [40, 100],
  ]);
  expect(lines[0]!.msg).toMatch(/cannot reach Redis/);
});

it('logs every other error, each time', async () => {
  const { lines, log } = logged();
  for (let i = 0; i < 3; i += 1) log(new Error('Missing lock for job 42. moveToFinished'));
  await new Promise((resolve) => setTimeout(resolve, 100));
  expect(lines.map((line) => [line.level, line.msg])).toEqual([
    [50, 'worker error'],
    [50, 'worker error'],
    [50, 'worker error'],
  ]);
});
