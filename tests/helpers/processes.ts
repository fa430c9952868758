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

/**
 * Ports handed out by {@link freePort}: a block of its own for each jest worker, below the
 * kernel's ephemeral range (32768 and up, where `listen(0)` and outgoing connections take theirs)
 * and the Redis Cluster runs' 20000-39999. A port taken from `listen(0)` and released could be
 * handed to a suite running in another worker before the app meant to bind it did, and a test
 * would then talk to the other suite's app.
 */
const PORT_BLOCK = 600;
const PORT_BASE = 10_000 + ((Number(process.env.JEST_WORKER_ID ?? 1) - 1) % 16) * PORT_BLOCK;
let nextPortOffset = 0;

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A loopback port nothing listens on, from this worker's block. */
export async function freePort(): Promise<number> {
  for (let tries = 0; tries < PORT_BLOCK; tries++) {
    const port = PORT_BASE + (nextPortOffset++ % PORT_BLOCK);
    if (await bindable(port)) return port;
  }
  throw new Error(`no free port in ${PORT_BASE}-${PORT_BASE + PORT_BLOCK - 1}`);
}

/** `ipc`: started over an IPC channel, as `npm start` starts the apps (the channel's end tells an app its supervisor is gone). */
export function startApp(name: AppName, env: Record<string, string>, options: { ipc?: boolean } = {}): RunningApp {
  const child = spawn(process.execPath, [path.join(ROOT, 'apps', name, 'dist', 'main.js')], {
    // Only what a process needs from the runner: the PATH and HOME, and on the Node 24 run the
    // preload that points native addons at their Node 24 build (scripts/test-node24.sh).
    env: {
      ...inherited(['PATH', 'HOME', 'NODE_OPTIONS', 'FFMPEG_PATH', 'FFPROBE_PATH', 'CLIPLINE_ADDON_REDIRECTS', 'CLIPLINE_ADDON_ABI']),
      HOME: process.env.HOME ?? '/tmp',
      ...env,
    },
    stdio: options.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
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
