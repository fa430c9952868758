/**
 * A throwaway PostgreSQL cluster of one test's own (initdb in a temporary directory, a free
 * loopback port), so the test can crash it without touching the shared server. PostgreSQL
 * refuses to run as root, so as root the cluster belongs to the `postgres` user.
 */
import { execFile } from 'node:child_process';
import { chown, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../helpers/processes.js';

const run = promisify(execFile);

export interface PrivatePostgresOptions {
  /** Directory holding initdb and pg_ctl. @defaultValue the directory of `initdb` on PATH, else /usr/lib/postgresql/<newest>/bin */
  binDir?: string;
  /** Owner of the cluster when the test runs as root. @defaultValue 'postgres' */
  osUser?: string;
}

async function findBinDir(): Promise<string> {
  try {
    const { stdout } = await run('sh', ['-c', 'readlink -f "$(command -v initdb)"']);
    if (stdout.trim()) return path.dirname(stdout.trim());
  } catch {
    // not on PATH: look where Debian installs it
  }
  const { stdout } = await run('sh', ['-c', 'ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1']);
  if (!stdout.trim()) throw new Error('PostgreSQL server binaries not found: install them (apt-get install -y postgresql) or pass binDir');
  return stdout.trim();
}

async function userIds(name: string): Promise<{ uid: number; gid: number }> {
  const [uid, gid] = await Promise.all([run('id', ['-u', name]), run('id', ['-g', name])]);
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

export class PrivatePostgres {
  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly binDir: string,
    private readonly owner: { uid: number; gid: number } | undefined,
  ) {}

  /** initdb (trust auth, user `postgres`) and start; the cluster is ready when this resolves. */
  static async create(options: PrivatePostgresOptions = {}): Promise<PrivatePostgres> {
    const binDir = options.binDir ?? (await findBinDir());
    const owner = process.getuid?.() === 0 ? await userIds(options.osUser ?? 'postgres') : undefined;
    const dir = await mkdtemp(path.join(os.tmpdir(), 'clipline-chaos-pg-'));
    if (owner) await chown(dir, owner.uid, owner.gid);
    const cluster = new PrivatePostgres(await freePort(), dir, binDir, owner);
    try {
      await cluster.tool('initdb', ['-D', cluster.dataDir, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync']);
      await cluster.start();
    } catch (error) {
      await cluster.destroy();
      throw error;
    }
    return cluster;
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  private get dataDir(): string {
    return path.join(this.dir, 'data');
  }

  /** Starts the cluster (again); after a crash this runs crash recovery first. */
  async start(): Promise<void> {
    const settings = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100`;
    await this.tool('pg_ctl', ['-D', this.dataDir, '-l', path.join(this.dir, 'server.log'), '-o', settings, '-w', '-t', '30', 'start']);
  }

  /**
   * Stops with `-m immediate`: every backend is killed without a clean shutdown, clients see
   * their connections drop, and the next start recovers from the WAL, as after a crash.
   */
  async crash(): Promise<void> {
    await this.tool('pg_ctl', ['-D', this.dataDir, '-m', 'immediate', '-w', 'stop']);
  }

  async isRunning(): Promise<boolean> {
    try {
      await this.tool('pg_ctl', ['-D', this.dataDir, 'status']);
      return true;
    } catch {
      return false;
    }
  }

  /** Stops the cluster if it runs and removes its directory. */
  async destroy(): Promise<void> {
    if (await this.isRunning()) await this.crash().catch(() => {});
    await rm(this.dir, { recursive: true, force: true });
  }

  /** The server log, for failure messages. */
  async log(): Promise<string> {
    return readFile(path.join(this.dir, 'server.log'), 'utf8').catch(() => '');
  }

  private async tool(name: string, args: string[]): Promise<void> {
    try {
      await run(path.join(this.binDir, name), args, { ...(this.owner ?? {}), cwd: this.dir, timeout: 60_000 });
    } catch (error) {
      const { stderr, stdout } = error as { stderr?: string; stdout?: string };
      throw new Error(`${name} ${args.join(' ')} failed: ${(stderr || stdout || (error as Error).message).trim()}`, { cause: error });
    }
  }
}
