/**
 * A real Prometheus (Debian's `prometheus` package) for tests: started on a free loopback port
 * with a configuration written to a temporary folder, queried through its HTTP API, and stopped
 * (its folder removed) by `close`.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { stringify as stringifyYaml } from 'yaml';
import { waitFor } from './services.js';

export interface RunningPrometheus {
  readonly url: string;
  readonly dir: string;
  /** Evaluates `expr` now; throws with Prometheus's own message when the query is refused. */
  query(expr: string): Promise<QuerySample[]>;
  /** The rule groups Prometheus loaded, as `/api/v1/rules` reports them. */
  rules(): Promise<{ name: string; rules: { name: string; health: string; lastError?: string }[] }[]>;
  close(): Promise<void>;
}

export interface QuerySample {
  metric: Record<string, string>;
  value: number;
}

/** The binary's path, or a clear error telling how to get it. */
export function prometheusBinary(name: 'prometheus' | 'promtool' = 'prometheus'): string {
  try {
    return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error(`${name} is not installed: apt-get install -y prometheus`);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts Prometheus with `config` (a prometheus.yml as an object); `files` are copied beside it
 * first (rule files named relative to the configuration, as in production).
 */
export async function startPrometheus(config: Record<string, unknown>, files: string[] = []): Promise<RunningPrometheus> {
  const binary = prometheusBinary();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'clipline-prometheus-'));
  for (const file of files) cpSync(file, path.join(dir, path.basename(file)));
  writeFileSync(path.join(dir, 'prometheus.yml'), stringifyYaml(config));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let output = '';
  const child: ChildProcess = spawn(
    binary,
    [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk));
  const close = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, 5000)))]);
      clearTimeout(timer);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`prometheus exited (${child.exitCode}): ${output.slice(-2000)}`);
        const res = await fetch(`${url}/-/ready`).catch(() => undefined);
        return res?.ok ? true : undefined;
      },
      30_000,
      'prometheus to be ready',
    );
  } catch (error) {
    await close();
    throw error;
  }
  const api = async (route: string) => {
    const res = await fetch(`${url}${route}`);
    const body = (await res.json()) as { status: string; error?: string; data: any };
    if (body.status !== 'success') throw new Error(`prometheus refused ${route}: ${body.error}`);
    return body.data;
  };
  return {
    url,
    dir,
    async query(expr) {
      const data = await api(`/api/v1/query?query=${encodeURIComponent(expr)}`);
      if (data.resultType === 'scalar') return [{ metric: {}, value: Number(data.result[1]) }];
      return (data.result as { metric: Record<string, string>; value: [number, string] }[]).map(({ metric, value }) => ({ metric, value: Number(value[1]) }));
    },
    async rules() {
      return (await api('/api/v1/rules')).groups;
    },
    close,
  };
}
