/** Starts the real app processes (built dist) for end-to-end tests, and stops them. */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname ?? '.', '../..');

export type AppName = 'producer' | 'worker-io' | 'worker-cpu' | 'dashboard';

export interface RunningApp {
  name: AppName;
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export function startApp(name: AppName, env: Record<string, string>): RunningApp {
  const child = spawn(process.execPath, [path.join(ROOT, 'apps', name, 'dist', 'main.js')], {
    // Only what a process needs from the runner: the PATH and HOME, and on the Node 24 run the
    // preload that points native addons at their Node 24 build (scripts/test-node24.sh).
    env: { ...inherited(['PATH', 'HOME', 'NODE_OPTIONS', 'CLIPLINE_ADDON_REDIRECTS', 'CLIPLINE_ADDON_ABI']), HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout?.on('data', (chunk: Buffer) => (text += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { name, child, output: () => text, exited };
}

/** Waits until `url` answers 200, or throws with the app's output. */
export async function waitForHttp(url: string, app: RunningApp, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (app.child.exitCode !== null) throw new Error(`${app.name} exited with ${app.child.exitCode}:\n${app.output()}`);
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${app.name} did not answer ${url} within ${timeoutMs} ms:\n${app.output()}`);
}

/** SIGTERM, then the exit code and how long the exit took. */
export async function stopApp(app: RunningApp, signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; ms: number }> {
  if (app.child.exitCode !== null) return { code: app.child.exitCode, ms: 0 };
  const started = Date.now();
  app.child.kill(signal);
  const kill = setTimeout(() => app.child.kill('SIGKILL'), 20_000);
  const { code } = await app.exited;
  clearTimeout(kill);
  return { code, ms: Date.now() - started };
}

function inherited(names: readonly string[]): Record<string, string> {
  return Object.fromEntries(names.flatMap((name) => (process.env[name] === undefined ? [] : [[name, process.env[name]!]])));
}
