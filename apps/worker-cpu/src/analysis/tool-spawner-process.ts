/**
 * The process that starts ffmpeg and ffprobe for worker-cpu ({@link ToolSpawner} forks it once).
 * A start from worker-cpu itself forks a process of 200 MB and more: the call blocks for 10-15 ms
 * and every page of worker-cpu, pool threads included, then faults once on its next write. Started
 * from this small process, a child costs worker-cpu one message.
 *
 * The child's stdout, stderr and (when asked for) fd 3 are sockets connected to worker-cpu (it
 * listens on one Unix socket per run, and the connections come in the order stdout, stderr, fd 3),
 * so their bytes never pass through here.
 *
 * Messages (JSON over the IPC channel), in: `start`, `kill`; out: `started`, `failed`, `exit`.
 * It lives as long as worker-cpu: SIGINT and SIGTERM are ignored, and when worker-cpu goes (its
 * channel closes) every child still running is killed, the folder of its sockets (argv[2]) is
 * removed, and this exits, so a worker-cpu that was killed leaves nothing behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { setPriority } from 'node:os';

export interface StartMessage {
  op: 'start';
  id: number;
  command: string;
  args: string[];
  /** The Unix socket worker-cpu listens on for this run's streams. */
  socket: string;
  /** Whether the child gets a fd 3 (a third connection). */
  fd3: boolean;
  niceness: number;
}

export interface KillMessage {
  op: 'kill';
  id: number;
  signal: NodeJS.Signals;
}

export type SpawnerReply =
  | { op: 'started'; id: number; pid: number }
  | { op: 'failed'; id: number; code: string | undefined; message: string }
  | { op: 'exit'; id: number; code: number | null; signal: NodeJS.Signals | null };

const children = new Map<number, ChildProcess>();
/** Runs being started, and the signal of a kill asked for meanwhile. */
const starting = new Map<number, NodeJS.Signals | null>();

function reply(message: SpawnerReply): void {
  if (process.connected) process.send?.(message);
}

function connectTo(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

async function start(message: StartMessage): Promise<void> {
  starting.set(message.id, null);
  try {
    await startChild(message);
  } finally {
    starting.delete(message.id);
  }
}

async function startChild(message: StartMessage): Promise<void> {
  const sockets: Socket[] = [];
  let child: ChildProcess;
  try {
    // One after the other: worker-cpu takes the connections in this order.
    for (let n = message.fd3 ? 3 : 2; n > 0; n--) sockets.push(await connectTo(message.socket));
    const [stdout, stderr, fd3] = sockets;
    // The child gets the sockets in blocking mode: stdout and stderr are made so by the start
    // itself; fd 3 is set here (ffmpeg would cope without it, retrying the writes it is refused).
    if (fd3) (fd3 as unknown as { _handle?: { setBlocking?(blocking: boolean): number } })._handle?.setBlocking?.(true);
    child = spawn(message.command, message.args, { stdio: ['ignore', stdout!, stderr!, ...(fd3 ? [fd3] : [])] });
  } catch (error) {
    for (const socket of sockets) socket.destroy();
    const { code, message: text } = error as NodeJS.ErrnoException;
    reply({ op: 'failed', id: message.id, code, message: text });
    return;
  }
  // The child holds its own copies now.
  for (const socket of sockets) socket.destroy();
  const pid = child.pid;
  if (pid === undefined) {
    child.once('error', (error: NodeJS.ErrnoException) => reply({ op: 'failed', id: message.id, code: error.code, message: error.message }));
    return;
  }
  children.set(message.id, child);
  child.on('error', () => {}); // a kill that fails: the exit still comes
  try {
    setPriority(pid, message.niceness);
  } catch {
    // Not permitted here: it runs at normal priority.
  }
  reply({ op: 'started', id: message.id, pid });
  const early = starting.get(message.id);
  if (early) child.kill(early);
  child.once('exit', (code, signal) => {
    children.delete(message.id);
    reply({ op: 'exit', id: message.id, code, signal });
  });
}

process.on('message', (message: StartMessage | KillMessage) => {
  if (message.op === 'start') void start(message);
  else if (message.op === 'kill') {
    const child = children.get(message.id);
    if (child) child.kill(message.signal);
    else if (starting.has(message.id)) starting.set(message.id, message.signal);
  }
});

// Ctrl-C in a terminal signals the whole process group: worker-cpu then shuts down, and this
// goes when it has (below), not before, with the runs of the jobs it is finishing.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});

process.on('disconnect', () => {
  for (const child of children.values()) child.kill('SIGKILL');
  const socketDir = process.argv[2];
  if (socketDir) rmSync(socketDir, { recursive: true, force: true });
  process.exit(0);
});
