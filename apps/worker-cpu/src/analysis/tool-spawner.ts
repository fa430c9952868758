import { fork, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { makeScratchDirSync, threadModulePath } from '@clipline/shared';
import type { KillMessage, SpawnerReply, StartMessage } from './tool-spawner-process.js';

export interface ToolExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A started tool, wherever it was started from: its streams, and how it ended. */
export interface ToolChild {
  stdout: Readable;
  stderr: Readable;
  /** The child's fd 3, when asked for. */
  fd3: Readable | null;
  /** Resolves once it has exited and its streams have closed (a child process's `close`); rejects when it could not start. */
  closed: Promise<ToolExit>;
  running(): boolean;
  kill(signal: NodeJS.Signals): void;
  /** Its process id, once known. */
  pid(): number | null;
}

export interface ToolStart {
  command: string;
  args: readonly string[];
  fd3: boolean;
  niceness: number;
}

/** The error of a tool that could not start, with the system's code (`ENOENT` for a missing binary). */
export class ToolStartError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
    this.name = 'ToolStartError';
  }
}

/** A run from its start message on: its answer, then its exit. */
class RunState {
  pid: number | null = null;
  exit: ToolExit | null = null;
  readonly answered: Promise<SpawnerReply | Error>;
  readonly exited: Promise<ToolExit>;
  answer!: (reply: SpawnerReply | Error) => void;
  settle!: (outcome: ToolExit | Error) => void;

  constructor() {
    this.answered = new Promise((resolve) => {
      this.answer = resolve;
    });
    this.exited = new Promise((resolve, reject) => {
      this.settle = (outcome) => (outcome instanceof Error ? reject(outcome) : resolve(outcome));
    });
    this.exited.catch(() => {});
  }
}

/** Connections of one run's socket, taken in the order they come. */
class RunSocket {
  readonly server: Server;
  private readonly sockets: Socket[] = [];
  private waiting: (() => void) | null = null;

  constructor(
    readonly path: string,
    private readonly expected: number,
  ) {
    this.server = createServer((socket) => {
      // A broken connection shows as a short stream to its reader; unheard, its error would end the process.
      socket.on('error', () => {});
      this.sockets.push(socket);
      if (this.sockets.length === this.expected) this.waiting?.();
    });
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.path, () => {
        this.server.off('error', reject);
        // A connection the server fails to accept (no file handle left) fails the run by not arriving.
        this.server.on('error', () => {});
        resolve();
      });
    });
  }

  /** All the expected connections. */
  all(): Promise<Socket[]> {
    if (this.sockets.length === this.expected) return Promise.resolve(this.sockets);
    return new Promise((resolve) => {
      this.waiting = () => resolve(this.sockets);
    });
  }

  close(destroyAccepted: boolean): void {
    this.server.close();
    if (destroyAccepted) for (const socket of this.sockets) socket.destroy();
  }
}

function socketClosed(socket: Readable): Promise<void> {
  return new Promise((resolve) => {
    if (socket.closed) resolve();
    else socket.once('close', () => resolve());
  });
}

/**
 * worker-cpu's side of the spawner process (`tool-spawner-process.ts`): forks it at the first start
 * and again after it is lost. Runs it had started when it died are killed by pid and fail with an
 * error that says so; their jobs are retried like any other transient failure.
 */
export class ToolSpawner {
  private process: ChildProcess | null = null;
  /** Runs from their start message until their exit is known. */
  private readonly runs = new Map<number, RunState>();
  private nextId = 1;
  private dir: string | null = null;

  /**
   * @param startTimeoutMs How long a start may go unanswered before the spawner counts as stuck
   *   (stopped, or its event loop blocked): it is killed then, and its runs fail as when it dies.
   */
  constructor(
    private readonly startTimeoutMs = 30_000,
    private readonly modulePath = threadModulePath(import.meta.url, './tool-spawner-process.js'),
  ) {}

  /** Starts a tool through the spawner process. */
  async start(request: ToolStart): Promise<ToolChild> {
    const spawner = this.spawner();
    const id = this.nextId++;
    const socket = new RunSocket(path.join(this.socketDir(), `${id}.sock`), request.fd3 ? 3 : 2);
    await socket.listen();
    const run = new RunState();
    this.runs.set(id, run);
    this.keepAlive();
    const message: StartMessage = {
      op: 'start',
      id,
      command: request.command,
      args: [...request.args],
      socket: socket.path,
      fd3: request.fd3,
      niceness: request.niceness,
    };
    spawner.send(message, (error: Error | null) => {
      if (error) run.answer(new Error(`ffmpeg's spawner process took no start (${error.message})`));
    });
    // The streams connect before the child starts; its answer may come first or last.
    const stuck = setTimeout(() => {
      // Its exit fails every run it holds, this one with them.
      if (this.process === spawner) spawner.kill('SIGKILL');
    }, this.startTimeoutMs);
    let reply: Awaited<typeof run.answered>;
    try {
      const first = await Promise.race([run.answered, socket.all()]);
      reply = Array.isArray(first) ? await run.answered : first;
    } finally {
      clearTimeout(stuck);
    }
    if (reply instanceof Error || reply.op !== 'started') {
      socket.close(true);
      this.runs.delete(id);
      this.keepAlive();
      const error =
        reply instanceof Error ? reply : new ToolStartError(reply.op === 'failed' ? reply.message : 'no start', reply.op === 'failed' ? reply.code : undefined);
      return failedChild(error, request.fd3);
    }
    const sockets = await withinMs(socket.all(), this.startTimeoutMs);
    if (!sockets) return this.unconnected(spawner, id, run, socket, request.fd3);
    socket.close(false);
    return this.child(id, run, sockets);
  }

  /**
   * A run whose streams did not all connect in time after it started (no file handle left to
   * accept them, say): nothing would ever read it or see it end, so it is killed and fails, to be
   * tried again, rather than left waiting for good.
   */
  private unconnected(spawner: ChildProcess, id: number, run: RunState, socket: RunSocket, fd3: boolean): ToolChild {
    socket.close(true);
    const kill: KillMessage = { op: 'kill', id, signal: 'SIGKILL' };
    if (spawner.connected) spawner.send(kill, () => {});
    else if (run.pid !== null) killPid(run.pid, 'SIGKILL');
    return failedChild(new Error(`the tool's output streams did not connect within ${this.startTimeoutMs / 1000} s of its start; it was stopped`), fd3);
  }

  /** The spawner process's pid, once it runs. */
  get pid(): number | undefined {
    return this.process?.pid;
  }

  /** Stops the spawner process (its children with it). */
  close(): void {
    this.process?.disconnect();
    this.process = null;
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    this.dir = null;
  }

  private child(id: number, run: RunState, [stdout, stderr, fd3]: Socket[]): ToolChild {
    const streams = [stdout!, stderr!, ...(fd3 ? [fd3] : [])];
    const closed = run.exited.then(async (result) => {
      // As a child process's own pipes: a stream nobody ever read is drained, so it can close. Not
      // before the readers a caller attaches as soon as the start resolves (an exit can come first).
      await new Promise((resolve) => setImmediate(resolve));
      for (const stream of streams) if (stream.readableFlowing === null) stream.resume();
      await Promise.all(streams.map(socketClosed));
      return result;
    });
    closed.catch(() => {});
    return {
      stdout: stdout!,
      stderr: stderr!,
      fd3: fd3 ?? null,
      closed,
      running: () => run.exit === null,
      pid: () => run.pid,
      kill: (signal) => {
        if (run.exit !== null) return;
        const message: KillMessage = { op: 'kill', id, signal };
        if (this.process?.connected) this.process.send(message, () => {});
        else if (run.pid !== null) killPid(run.pid, signal);
      },
    };
  }

  private onReply(reply: SpawnerReply): void {
    const run = this.runs.get(reply.id);
    if (!run) return;
    if (reply.op === 'started') run.pid = reply.pid;
    if (reply.op !== 'exit') {
      run.answer(reply);
      return;
    }
    this.runs.delete(reply.id);
    run.exit = { code: reply.code, signal: reply.signal };
    run.settle(run.exit);
    this.keepAlive();
  }

  /** The spawner is gone: its runs are killed and fail, the next start forks a new one. */
  private lost(spawner: ChildProcess, reason: string): void {
    if (this.process !== spawner) return;
    this.process = null;
    const error = new Error(`ffmpeg's spawner process ${reason}; its runs were stopped`);
    for (const run of this.runs.values()) {
      if (run.pid !== null) killPid(run.pid, 'SIGKILL');
      run.exit = { code: null, signal: 'SIGKILL' };
      run.answer(error);
      run.settle(error);
    }
    this.runs.clear();
  }

  private spawner(): ChildProcess {
    if (this.process?.connected) return this.process;
    // Small and plain: none of this process's flags (profilers, loaders) and a small heap.
    // It removes the sockets' folder when this process goes, however it goes.
    const spawner = fork(this.modulePath, [this.socketDir()], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: ['--max-old-space-size=64'] });
    spawner.on('message', (reply: SpawnerReply) => this.onReply(reply));
    spawner.once('exit', (code, signal) => this.lost(spawner, signal ? `was killed by ${signal}` : `exited with ${code}`));
    spawner.on('error', (error) => this.lost(spawner, `failed (${error.message})`));
    this.process = spawner;
    return spawner;
  }

  /** While a run is being started or is running, the channel keeps this process alive to hear its exit; idle, it keeps nobody. */
  private keepAlive(): void {
    const spawner = this.process;
    if (!spawner) return;
    if (this.runs.size > 0) {
      spawner.ref();
      spawner.channel?.ref();
    } else {
      spawner.unref();
      spawner.channel?.unref();
    }
  }

  private socketDir(): string {
    // Private to this user: nobody else can connect and write into a run's streams.
    this.dir ??= makeScratchDirSync('spawn');
    return this.dir;
  }
}

function killPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

/** A run that never started: empty streams, and `closed` rejects with why. */
/** `promise`'s value, or undefined once `ms` have passed without it. */
async function withinMs<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

function failedChild(error: Error, fd3: boolean): ToolChild {
  const closed = Promise.reject(error);
  closed.catch(() => {});
  return {
    stdout: Readable.from([]),
    stderr: Readable.from([]),
    fd3: fd3 ? Readable.from([]) : null,
    closed,
    running: () => false,
    kill: () => {},
    pid: () => null,
  };
}
