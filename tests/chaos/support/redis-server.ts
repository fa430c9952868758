/**
 * A redis-server of one test's own, with an append-only file, so the test can SIGKILL it and
 * start it again on the same port and directory: the restarted server replays the AOF, as a
 * production Redis (infra/redis.conf: AOF everysec) does after a crash.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from '../../helpers/processes.js';
import { waitFor } from '../../helpers/services.js';

export interface PrivateRedisOptions {
  /** @defaultValue '/usr/bin/redis-server' */
  binary?: string;
  /** Milliseconds a start (including the AOF replay) may take. @defaultValue 15000 */
  startTimeoutMs?: number;
  /** When the AOF is fsynced: `always` loses no acknowledged write to a crash. @defaultValue 'everysec' */
  appendfsync?: 'always' | 'everysec';
}

export class PrivateRedis {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private output = '';

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly binary: string,
    private readonly startTimeoutMs: number,
    private readonly appendfsync: 'always' | 'everysec',
  ) {}

  /** A fresh server on a free loopback port, with its data in a new temporary directory. */
  static async start(options: PrivateRedisOptions = {}): Promise<PrivateRedis> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'clipline-chaos-redis-'));
    const server = new PrivateRedis(
      await freePort(),
      dir,
      options.binary ?? '/usr/bin/redis-server',
      options.startTimeoutMs ?? 15_000,
      options.appendfsync ?? 'everysec',
    );
    try {
      await server.launch();
    } catch (error) {
      await server.destroy();
      throw error;
    }
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts the server (again) on the same port and directory; resolves once it answers PING. */
  async launch(): Promise<void> {
    if (this.running) throw new Error(`redis-server on port ${this.port} is already running`);
    const args = [
      '--port',
      String(this.port),
      '--bind',
      '127.0.0.1',
      '--dir',
      this.dir,
      '--appendonly',
      'yes',
      '--appendfsync',
      this.appendfsync,
      '--save',
      '',
    ];
    const child = spawn(this.binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.once('error', (error) => (this.output += `\n${error.message}: is redis-server installed at ${this.binary}?`));
    try {
      await waitFor(async () => ((await this.answersPing()) ? true : undefined), this.startTimeoutMs, `redis-server on port ${this.port} to answer PING`);
    } catch (error) {
      throw new Error(`${(error as Error).message}\nredis-server output:\n${this.output.slice(-2000)}`, { cause: error });
    }
  }

  /** SIGKILL, the way a crash or an OOM kill ends it; resolves once the process is gone. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.child!.kill('SIGKILL');
    await this.exited;
  }

  /** Kills the server if it runs and removes its data directory. */
  async destroy(): Promise<void> {
    await this.kill();
    await rm(this.dir, { recursive: true, force: true });
  }

  /** PING answered with PONG: the AOF, if any, has been loaded (Redis answers LOADING before). */
  private async answersPing(): Promise<boolean> {
    if (!this.running) throw new Error(`redis-server exited:\n${this.output.slice(-2000)}`);
    const probe = new Redis(this.url, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      enableOfflineQueue: false,
      connectTimeout: 1000,
    });
    probe.on('error', () => {});
    try {
      await probe.connect();
      return (await probe.ping()) === 'PONG';
    } catch {
      return false;
    } finally {
      probe.disconnect();
    }
  }
}
