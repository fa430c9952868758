/**
 * infra/Dockerfile built for real, without a Docker engine: every stage replayed on this machine
 * (npm ci with the manifests only, npm run build, the production install and better-sqlite3's
 * rebuild, the runtime tree assembled from the deps and build stages), then the runtime tree run:
 * the upstream simulator, and in production mode against the test Redis and PostgreSQL the
 * migration, the producer until /readyz answers and the dashboard until /healthz answers. A few minutes (two installs, a native
 * build), so it runs only with CLIPLINE_DOCKER_BUILD=full:
 *
 *   CLIPLINE_DOCKER_BUILD=full node --experimental-vm-modules node_modules/jest/bin/jest.js tests/infra/docker-build-full.test.ts
 *
 * The default suite checks the same Dockerfile statically and compiles its build stage
 * (docker-build.test.ts).
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';
import { dropDatabase } from '../../packages/shared/src/db/connection.js';
import { type AppName, freePort, type RunningApp, stopApp, waitForHttp } from '../helpers/processes.js';
import { DATABASE_URL, deleteKeys, REDIS_URL } from '../helpers/services.js';
import { buildContext } from './support/build-context.js';
import { imageStages } from './support/image.js';
import { existsInReplay, type Replay, replayStages } from './support/replay.js';
import { ROOT } from './support/workspace.js';

const FULL = process.env.CLIPLINE_DOCKER_BUILD === 'full';

/** Starts a script of the replayed runtime tree, as the image's CMD would (`node <script>` in /app). */
function startFrom(runtime: string, script: string, env: Record<string, string>): RunningApp {
  const child = spawn(process.execPath, [script], { cwd: runtime, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout?.on('data', (chunk: Buffer) => (text += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { name: script as AppName, child, output: () => text, exited };
}

/** A production environment on the tests' Redis and PostgreSQL, in a schema and under a prefix of its own. */
function productionEnv(runtime: string, schema: string, ports: { api: number; metrics: number; dashboard: number }): Record<string, string> {
  return {
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    HOST: '127.0.0.1',
    REDIS_URL,
    DATABASE_URL,
    DATABASE_SCHEMA: schema,
    QUEUE_PREFIX: `{image-${schema}}`,
    STORAGE_DIR: path.join(runtime, 'storage'),
    PORT: String(ports.api),
    PRODUCER_METRICS_PORT: String(ports.metrics),
    DASHBOARD_PORT: String(ports.dashboard),
    API_KEYS: randomBytes(32).toString('hex'),
    DASHBOARD_PASSWORD: randomBytes(32).toString('hex'),
    ACCOUNTS_KEYRING: `main:${randomBytes(32).toString('base64')}`,
  };
}

(FULL ? describe : describe.skip)('infra/Dockerfile, every stage replayed (CLIPLINE_DOCKER_BUILD=full)', () => {
  const stages = imageStages();
  const runtimeName = [...stages.keys()].at(-1)!;
  let replay: Replay;
  let runtime: string;
  const schema = `t_${randomUUID().replace(/-/g, '').slice(0, 12)}`;

  beforeAll(() => {
    replay = replayStages(stages, buildContext(ROOT).files);
    runtime = replay.dirOf(runtimeName);
  }, 600_000);
  afterAll(async () => {
    await dropDatabase({ url: DATABASE_URL, schema, poolSize: 1 }).catch(() => {});
    await deleteKeys(REDIS_URL, `{image-${schema}}:*`);
    replay?.cleanup();
  });

  it('assembles a runtime tree with every process, production dependencies only, and a working better-sqlite3', () => {
    expect(replay.skipped.every((command) => /apt-get|mkdir -p "?\//.test(command))).toBe(true);
    for (const script of ['apps/producer', 'apps/worker-io', 'apps/worker-cpu', 'apps/dashboard', 'infra/upstream-sim'].map((dir) => `${dir}/dist/main.js`)) {
      expect([script, existsInReplay(runtime, `/app/${script}`)]).toEqual([script, true]);
    }
    expect(existsInReplay(runtime, '/app/node_modules/typescript')).toBe(false);
    expect(existsInReplay(runtime, '/app/node_modules/jest')).toBe(false);
    const sqlite = "const D = require('better-sqlite3'); console.log(new D(':memory:').prepare('select 40 + 2 as n').get().n)";
    expect(execFileSync(process.execPath, ['-e', sqlite], { cwd: runtime, encoding: 'utf8' }).trim()).toBe('42');
  });

  it('starts the upstream simulator of the dev overlay from the runtime tree', async () => {
    const port = await freePort();
    const simulator = startFrom(runtime, 'infra/upstream-sim/dist/main.js', { UPSTREAM_SIM_PORT: String(port), UPSTREAM_SIM_HOST: '127.0.0.1' });
    try {
      await waitForHttp(`http://127.0.0.1:${port}/_sim/health`, simulator, 30_000);
    } finally {
      expect((await stopApp(simulator)).code).toBe(0);
    }
  });

  it('migrates, then serves the API and the dashboard in production mode', async () => {
    const ports = { api: await freePort(), metrics: await freePort(), dashboard: await freePort() };
    const env = productionEnv(runtime, schema, ports);
    const migrated = execFileSync(process.execPath, ['packages/shared/dist/db/migrate-cli.js'], {
      cwd: runtime,
      env: { PATH: process.env.PATH ?? '', ...env },
      encoding: 'utf8',
    });
    expect(migrated).toMatch(/migrations applied/);
    const apps: RunningApp[] = [];
    try {
      apps.push(startFrom(runtime, 'apps/producer/dist/main.js', env));
      await waitForHttp(`http://127.0.0.1:${ports.api}/readyz`, apps[0]!, 60_000);
      apps.push(startFrom(runtime, 'apps/dashboard/dist/main.js', env));
      await waitForHttp(`http://127.0.0.1:${ports.dashboard}/healthz`, apps[1]!, 60_000);
    } finally {
      for (const app of apps) expect((await stopApp(app)).code).toBe(0);
    }
  }, 180_000);
});
