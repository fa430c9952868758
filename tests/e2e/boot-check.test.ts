/**
 * The built apps against a database nobody migrated: each refuses to start (exit 78) with one
 * fatal line naming `npm run migrate`, instead of answering 500 behind a green /readyz. After
 * the migration the producer starts and is ready. Workers pointed at a Redis that does not answer
 * say so at once instead of waiting in silence.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { jest } from '@jest/globals';
import { createTestDatabase, DATABASE_URL, deleteKeys, REDIS_URL, type TestDatabase } from '../helpers/services.js';
import { freePort, startApp, stopApp, waitForHttp, type AppName } from '../helpers/processes.js';

jest.setTimeout(120_000);

const token = randomUUID().replace(/-/g, '').slice(0, 12);
let storage: string;
let env: Record<string, string>;
let database: TestDatabase | undefined;

beforeAll(async () => {
  storage = await mkdtemp(path.join(os.tmpdir(), 'clipline-boot-'));
  env = {
    NODE_ENV: 'test',
    LOG_LEVEL: 'info',
    REDIS_URL,
    DATABASE_URL,
    DATABASE_SCHEMA: `t_${token}`,
    QUEUE_PREFIX: `{test-${token}}`,
    STORAGE_DIR: storage,
    HOST: '127.0.0.1',
    PORT: String(await freePort()),
    PRODUCER_METRICS_PORT: '0',
    WORKER_IO_METRICS_PORT: '0',
    WORKER_CPU_METRICS_PORT: '0',
  };
});

afterAll(async () => {
  await database?.cleanup();
  await deleteKeys(REDIS_URL, `{test-${token}}:*`);
  await rm(storage, { recursive: true, force: true });
});

it.each<AppName>(['producer', 'worker-io', 'worker-cpu'])('%s refuses to start on an unmigrated database, naming npm run migrate', async (name) => {
  const app = startApp(name, env);
  const { code } = await app.exited;
  expect(code).toBe(78);
  const lines = app
    .output()
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { level: number; msg: string; pendingMigrations: string[] });
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatchObject({ level: 60, pendingMigrations: expect.arrayContaining(['0001-initial']) });
  expect(lines[0]!.msg).toMatch(
    new RegExp(
      `^${name} refuses to start: the database PostgreSQL .*\\(schema t_${token}\\) is not migrated \\(it has no clipline tables\\): run \`npm run migrate\``,
    ),
  );
});

it('the producer starts and is ready once the database is migrated', async () => {
  database = await createTestDatabase(DATABASE_URL, env.DATABASE_SCHEMA, 1);
  const app = startApp('producer', env);
  await waitForHttp(`http://127.0.0.1:${env.PORT}/readyz`, app);
  expect((await stopApp(app)).code).toBe(0);
  expect(app.output()).not.toMatch(/refuses to start/);
});

it.each<AppName>(['worker-io', 'worker-cpu'])(
  '%s pointed at a Redis that does not answer says so at once, naming REDIS_URL, instead of waiting silently',
  async (name) => {
    database ??= await createTestDatabase(DATABASE_URL, env.DATABASE_SCHEMA, 1);
    const app = startApp(name, { ...env, REDIS_URL: 'redis://127.0.0.1:1' });
    try {
      const deadline = Date.now() + 15_000;
      while (!/cannot reach Redis/.test(app.output()) && Date.now() < deadline && app.child.exitCode === null)
        await new Promise((resolve) => setTimeout(resolve, 100));
      const line = app
        .output()
        .split('\n')
        .find((text) => text.includes('cannot reach Redis'));
      expect(line && JSON.parse(line)).toMatchObject({
        level: 40,
        msg: expect.stringContaining('(REDIS_URL)'),
        reason: expect.stringContaining('127.0.0.1:1'),
      });
    } finally {
      await stopApp(app, 'SIGKILL');
    }
  },
);
