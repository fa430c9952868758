/**
 * A throwaway MariaDB server of one test's own (mariadb-install-db in a temporary directory, a
 * free loopback port, root without a password), so the test can SIGKILL it without touching the
 * shared server. As root the server runs as the `mysql` user, as Debian's does.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chown, mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { freePort } from '../../helpers/processes.js';

const run = promisify(execFile);

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export class PrivateMariadb {
  private server: ChildProcess | undefined;

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly osUser: string | undefined,
  ) {}

  static async create(): Promise<PrivateMariadb> {
    const osUser = process.getuid?.() === 0 ? 'mysql' : undefined;
    const dir = await mkdtemp(path.join(os.tmpdir(), 'clipline-chaos-mariadb-'));
    if (osUser) {
      const [uid, gid] = await Promise.all([run('id', ['-u', osUser]), run('id', ['-g', osUser])]);
      await chown(dir, Number(uid.stdout.trim()), Number(gid.stdout.trim()));
    }
    const server = new PrivateMariadb(await freePort(), dir, osUser);
    try {
      await run(
        'mariadb-install-db',
        ['--no-defaults', `--datadir=${server.dataDir}`, '--auth-root-authentication-method=normal', '--skip-test-db', ...(osUser ? [`--user=${osUser}`] : [])],
        { timeout: 60_000 },
      );
      await server.start();
    } catch (error) {
      await server.destroy();
      throw error;
    }
    return server;
  }

  get url(): string {
    return `mysql://root@127.0.0.1:${this.port}/mysql`;
  }

  private get dataDir(): string {
    return path.join(this.dir, 'data');
  }

  /** Starts the server (again); after a kill, InnoDB recovers from its redo log first. */
  async start(): Promise<void> {
    this.server = spawn(
      'mariadbd',
      [
        '--no-defaults',
        `--datadir=${this.dataDir}`,
        `--port=${this.port}`,
        '--bind-address=127.0.0.1',
        `--socket=${path.join(this.dir, 'mysqld.sock')}`,
        `--pid-file=${path.join(this.dir, 'mysqld.pid')}`,
        `--log-error=${path.join(this.dir, 'error.log')}`,
        '--innodb-buffer-pool-size=64M',
        '--max-connections=200',
        ...(this.osUser ? [`--user=${this.osUser}`] : []),
      ],
      { stdio: 'ignore' },
    );
    const deadline = Date.now() + 30_000;
    while (!(await answers(this.port))) {
      if (this.server.exitCode !== null || Date.now() > deadline) throw new Error(`mariadbd did not come up on port ${this.port}:\n${await this.log()}`);
      await sleep(100);
    }
  }

  /** SIGKILL: no clean shutdown, every client sees its connection drop. */
  async crash(): Promise<void> {
    const server = this.server;
    if (!server || server.exitCode !== null) return;
    const exited = new Promise((resolve) => server.once('exit', resolve));
    server.kill('SIGKILL');
    await exited;
  }

  isRunning(): boolean {
    return this.server !== undefined && this.server.exitCode === null && this.server.signalCode === null;
  }

  async destroy(): Promise<void> {
    await this.crash();
    await rm(this.dir, { recursive: true, force: true });
  }

  /** The server's error log, for failure messages. */
  log(): Promise<string> {
    return readFile(path.join(this.dir, 'error.log'), 'utf8').catch(() => '');
  }
}
