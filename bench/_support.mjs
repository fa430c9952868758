// Helpers the benchmarks share (files starting with _ are not benchmarks of their own).
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';

/** A TCP port free on the loopback interface right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Deletes every key under `prefix` (a bench's own queue prefix) on one Redis. */
export async function clearPrefix(redis, prefix) {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await redis.del(...keys);
  } while (cursor !== '0');
}

/** SIGTERM to a started app (`{child, exited}`), SIGKILL after 15 s, resolved once it has exited. */
export async function stopNode(app) {
  if (app.child.exitCode !== null || app.child.signalCode !== null) return;
  app.child.kill('SIGTERM');
  const kill = setTimeout(() => app.child.kill('SIGKILL'), 15_000);
  await app.exited;
  clearTimeout(kill);
}

/** The middle value (the upper one of an even count). */
export const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

const CLOCK_TICKS_PER_SECOND = 100;

/** Children a process has now (every thread's), by pid. */
function liveChildren(pid) {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
      readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(' ').filter(Boolean).map(Number),
    );
  } catch {
    return [];
  }
}

/**
 * CPU seconds of a process itself (all its threads) and of its children, apart; 0 for both once
 * it is gone. Children count whether they are reaped or still running, and so do theirs: ffmpeg
 * started by worker-cpu's spawner process (whose runs it reaps itself) counts as worker-cpu's.
 * `liveOwn`: the part of `children` that is the running children's own (the spawner's, not its runs').
 */
export function processTreeCpu(pid = process.pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // utime, stime, cutime, cstime: fields 14-17 of stat, 12-15 after "pid (comm) ".
    const ticks = stat
      .slice(stat.lastIndexOf(')') + 2)
      .split(' ')
      .slice(11, 15)
      .map(Number);
    let children = (ticks[2] + ticks[3]) / CLOCK_TICKS_PER_SECOND;
    let liveOwn = 0;
    for (const child of liveChildren(pid)) {
      const tree = processTreeCpu(child);
      children += tree.own + tree.children;
      liveOwn += tree.own;
    }
    return { own: (ticks[0] + ticks[1]) / CLOCK_TICKS_PER_SECOND, children, liveOwn };
  } catch {
    return { own: 0, children: 0, liveOwn: 0 };
  }
}
