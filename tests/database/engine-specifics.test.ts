/**
 * What one engine does differently and the layer must absorb: SQLite's single writer and
 * synchronous driver, each engine's outage errors, and the PostgreSQL column types that the
 * other engines store in plainer form.
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import Database from 'better-sqlite3';
import {
  createDatabase,
  isDependencyOutage,
  resolveDatabaseTarget,
  STORED_VALUE_COLUMNS,
  VideosRepository,
} from '@clipline/shared';
import { createTestDatabase, TEST_DATABASE_ENGINES, type TestDatabase } from '../helpers/services.js';

const [postgresEngine, , sqliteEngine] = TEST_DATABASE_ENGINES;

describe('SQLite', () => {
  let database: TestDatabase;
  let file: string;

  beforeAll(async () => {
    database = await createTestDatabase(sqliteEngine.url);
    const target = resolveDatabaseTarget(database.settings.url, database.settings.schema);
    if (target.engine !== 'sqlite') throw new Error('expected a SQLite target');
    file = target.file;
  });

  afterAll(async () => {
    await database?.cleanup();
  });

  it('runs statements off the event loop: timers keep firing while a long query runs', async () => {
    const gaps: number[] = [];
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      gaps.push(now - last);
      last = now;
    }, 5);
    const started = performance.now();
    // A recursive count that keeps SQLite busy for a few hundred milliseconds.
    const { rows } = await sql<{ total: number }>`
      with recursive counter(n) as (select 1 union all select n + 1 from counter where n < 3000000)
      select count(*) as total from counter`.execute(database.db);
    const elapsed = performance.now() - started;
    clearInterval(timer);
    expect(rows[0]?.total).toBe(3_000_000);
    expect(elapsed).toBeGreaterThan(100);
    // On a blocked loop there would be one gap as long as the query.
    expect(Math.max(...gaps)).toBeLessThan(elapsed / 2);
    expect(gaps.length).toBeGreaterThan(elapsed / 50);
  });

  it('lets two processes write the same file at once: each waits for the other, none fails', async () => {
    // A second Kysely instance has its own thread and connection, as another process would.
    const other = createDatabase({ ...database.settings, poolSize: 1 });
    try {
      const mine = new VideosRepository(database.db);
      const theirs = new VideosRepository(other);
      const ids = Array.from({ length: 60 }, () => randomUUID());
      await Promise.all(
        ids.map(async (id, index) => {
          const repository = index % 2 ? theirs : mine;
          await repository.create({ id, source: `/media/${id}.mp4`, title: null, steps: ['ingest', 'analyze'] });
          await repository.setStatus(id, 'processing');
          await repository.setStep(id, 'ingest', 'completed');
        }),
      );
      const { count } = await database.db
        .selectFrom('video_steps')
        .select((eb) => eb.fn.countAll<number>().as('count'))
        .where('video_id', 'in', ids)
        .where('status', '=', 'completed')
        .executeTakeFirstOrThrow();
      expect(Number(count)).toBe(60);
    } finally {
      await other.destroy();
    }
  });

  it('reports a lock held past the busy timeout as an outage to wait out, not a job failure', async () => {
    const holder = new Database(file);
    const impatient = createDatabase({ ...database.settings, busyTimeoutMs: 50 });
    try {
      holder.exec('begin immediate');
      const failure = await new VideosRepository(impatient)
        .create({ id: randomUUID(), source: '/media/x.mp4', title: null, steps: [] })
        .then(() => undefined, (error: unknown) => error);
      expect((failure as { code?: string }).code).toBe('SQLITE_BUSY');
      expect(isDependencyOutage(failure)).toBe(true);
    } finally {
      holder.exec('rollback');
      holder.close();
      await impatient.destroy();
    }
  });
});

describe('outages', () => {
  it.each([
    ['PostgreSQL', 'postgres://postgres@127.0.0.1:1/test'],
    ['MariaDB', 'mysql://root@127.0.0.1:1/test'],
  ])('%s that refuses connections is an outage', async (_name, url) => {
    const db = createDatabase({ url, schema: 'public', poolSize: 1 });
    try {
      const failure = await new VideosRepository(db).ping().then(() => undefined, (error: unknown) => error);
      expect(failure).toBeDefined();
      expect(isDependencyOutage(failure)).toBe(true);
    } finally {
      await db.destroy().catch(() => {});
    }
  });

  it.each(TEST_DATABASE_ENGINES)('a broken constraint on $name is not an outage: retrying cannot fix it', async ({ url }) => {
    const database = await createTestDatabase(url);
    try {
      const violation = await database.db
        .insertInto('scenes')
        .values({ video_id: randomUUID(), scene_index: 0, start_seconds: 0, end_seconds: 1 })
        .execute()
        .then(() => undefined, (error: unknown) => error);
      expect(violation).toBeDefined();
      expect(isDependencyOutage(violation)).toBe(false);
    } finally {
      await database.cleanup();
    }
  });
});

describe('stored values', () => {
  it('decodes every PostgreSQL time, JSON, array and boolean column on the other engines', async () => {
    const database = await createTestDatabase(postgresEngine.url);
    try {
      const { rows } = await sql<{ column_name: string; data_type: string }>`
        select column_name, data_type from information_schema.columns
        where table_schema = ${database.settings.schema} and table_name not like 'kysely%'`.execute(database.db);
      const kinds: Record<string, keyof typeof STORED_VALUE_COLUMNS> = {
        'timestamp with time zone': 'timestamp',
        jsonb: 'json',
        ARRAY: 'json',
        boolean: 'boolean',
      };
      const found = { timestamp: new Set<string>(), json: new Set<string>(), boolean: new Set<string>() };
      for (const row of rows) {
        const kind = kinds[row.data_type];
        if (kind) found[kind].add(row.column_name);
      }
      expect(found).toEqual({
        timestamp: new Set(STORED_VALUE_COLUMNS.timestamp),
        json: new Set(STORED_VALUE_COLUMNS.json),
        boolean: new Set(STORED_VALUE_COLUMNS.boolean),
      });
    } finally {
      await database.cleanup();
    }
  });
});
