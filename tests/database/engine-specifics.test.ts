/**
 * What one engine does differently and the layer must absorb: SQLite's single writer and
 * synchronous driver, each engine's outage errors, and the PostgreSQL column types that the
 * other engines store in plainer form.
 */
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { Migrator, sql } from 'kysely';
import Database from 'better-sqlite3';
import { createDatabase, dropDatabase, isDependencyOutage, resolveDatabaseTarget, STORED_VALUE_COLUMNS, VideosRepository } from '@clipline/shared';
import { createTestDatabase, TEST_DATABASE_ENGINES, type TestDatabase } from '../helpers/services.js';

const [postgresEngine, mysqlEngine, sqliteEngine] = TEST_DATABASE_ENGINES;

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
    // Ticks of a timer while the query is pending. A driver running the statement on this
    // thread would block the loop until the answer, leaving no tick in between.
    let ticks = 0;
    let pending = true;
    const timer = setInterval(() => {
      if (pending) ticks += 1;
    }, 1);
    // A recursive count that keeps SQLite busy for a few hundred milliseconds.
    const { rows } = await sql<{ total: number }>`
      with recursive counter(n) as (select 1 union all select n + 1 from counter where n < 3000000)
      select count(*) as total from counter`
      .execute(database.db)
      .finally(() => (pending = false));
    clearInterval(timer);
    expect(rows[0]?.total).toBe(3_000_000);
    expect(ticks).toBeGreaterThanOrEqual(10);
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

  it('opens again after a failed open, and reports every failure with its SQLite code', async () => {
    const locked = `${file}.locked.db`;
    const holder = new Database(locked);
    holder.exec('create table t (a)');
    holder.exec('begin exclusive');
    holder.exec('insert into t values (1)');
    const waiting = createDatabase({ url: `sqlite:${locked}`, schema: 'public', poolSize: 1, busyTimeoutMs: 50 });
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        const failure = await sql`select count(*) as n from t`.execute(waiting).then(
          () => undefined,
          (error: unknown) => error,
        );
        expect({ attempt, code: (failure as { code?: string }).code, outage: isDependencyOutage(failure) }).toEqual({
          attempt,
          code: 'SQLITE_BUSY',
          outage: true,
        });
      }
      holder.exec('commit');
      const { rows } = await sql<{ n: number }>`select count(*) as n from t`.execute(waiting);
      expect(rows[0]?.n).toBe(1);
    } finally {
      holder.close();
      await waiting.destroy();
      await dropDatabase({ url: `sqlite:${locked}`, schema: 'public', poolSize: 1 });
    }
  });

  it('applies migrations whole or not at all: one that fails midway leaves nothing behind', async () => {
    const migrator = new Migrator({
      db: database.db,
      migrationTableName: 'test_migrations',
      migrationLockTableName: 'test_migrations_lock',
      provider: {
        getMigrations: async () => ({
          '0001-half': {
            up: async (db) => {
              await sql`create table half_applied (id text primary key)`.execute(db);
              await sql`insert into half_applied (id) values ('a')`.execute(db);
              throw new Error('the second half failed');
            },
          },
        }),
      },
    });
    const result = await migrator.migrateToLatest();
    expect((result.error as Error).message).toBe('the second half failed');
    const { rows } = await sql<{ n: number }>`select count(*) as n from sqlite_master where name = 'half_applied'`.execute(database.db);
    expect(Number(rows[0]?.n)).toBe(0);
    expect(await migrator.getMigrations()).toEqual([expect.objectContaining({ name: '0001-half', executedAt: undefined })]);
  });

  it('refuses a parameter that cannot reach the thread, and goes on serving', async () => {
    const failure = await sql`select ${Symbol('not bindable') as unknown as string} as x`.execute(database.db).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect((failure as Error).message).toMatch(/^could not send a statement to the SQLite thread: /);
    const { rows } = await sql<{ x: number }>`select ${41} + 1 as x`.execute(database.db);
    expect(rows[0]?.x).toBe(42);
  });

  it('reports a lock held past the busy timeout as an outage to wait out, not a job failure', async () => {
    const holder = new Database(file);
    const impatient = createDatabase({ ...database.settings, busyTimeoutMs: 50 });
    try {
      holder.exec('begin immediate');
      const failure = await new VideosRepository(impatient).create({ id: randomUUID(), source: '/media/x.mp4', title: null, steps: [] }).then(
        () => undefined,
        (error: unknown) => error,
      );
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
      const failure = await new VideosRepository(db).ping().then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(failure).toBeDefined();
      expect(isDependencyOutage(failure)).toBe(true);
    } finally {
      await db.destroy().catch(() => {});
    }
  });

  it.each(TEST_DATABASE_ENGINES.slice(0, 2))(
    'a $name connection lost while a transaction holds it fails that transaction as an outage, and the process and the pool go on',
    async ({ name, url }) => {
      const database = await createTestDatabase(url);
      try {
        const own = name === 'PostgreSQL' ? sql<{ id: number }>`select pg_backend_pid() as id` : sql<{ id: number }>`select connection_id() as id`;
        const failure = await database.db
          .transaction()
          .execute(async (trx) => {
            const { rows } = await own.execute(trx);
            // Another connection of the pool ends this one's session while it sits between statements.
            const end = name === 'PostgreSQL' ? sql`select pg_terminate_backend(${rows[0]!.id})` : sql.raw(`kill ${rows[0]!.id}`);
            await end.execute(database.db);
            // The server's goodbye reaches the checked-out connection while no statement of it runs.
            await new Promise((resolve) => setTimeout(resolve, 300));
            await sql`select 1`.execute(trx);
          })
          .then(
            () => undefined,
            (error: unknown) => error,
          );
        expect(failure).toBeDefined();
        expect(isDependencyOutage(failure)).toBe(true);
        // The lost connection left the pool: the next statements get working ones.
        for (let round = 0; round < 6; round += 1) {
          const { rows } = await sql<{ one: number }>`select 1 as one`.execute(database.db);
          expect(Number(rows[0]?.one)).toBe(1);
        }
      } finally {
        await database.cleanup();
      }
    },
  );

  it('a PostgreSQL connection reset while its statement runs fails the statement as an outage', async () => {
    const database = await createTestDatabase(postgresEngine.url);
    const target = new URL(postgresEngine.url);
    // A relay between the pool and PostgreSQL, whose client side is reset mid-statement (as a proxy or a failover does).
    const sockets = new Set<net.Socket>();
    const relay = net.createServer((client) => {
      const server = net.connect(Number(target.port || 5432), target.hostname);
      sockets.add(client);
      client.pipe(server).pipe(client);
      client.on('error', () => server.destroy());
      server.on('error', () => client.destroy());
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    const port = (relay.address() as net.AddressInfo).port;
    const url = new URL(postgresEngine.url);
    url.hostname = '127.0.0.1';
    url.port = String(port);
    const db = createDatabase({ ...database.settings, url: url.toString() });
    try {
      await sql`select 1`.execute(db);
      const running = sql`select pg_sleep(5)`.execute(db).then(
        () => undefined,
        (error: unknown) => error,
      );
      await new Promise((resolve) => setTimeout(resolve, 200));
      for (const socket of sockets) socket.resetAndDestroy();
      const failure = (await running) as { code?: string; syscall?: string };
      expect({ code: failure?.code, syscall: failure?.syscall, outage: isDependencyOutage(failure) }).toEqual({
        code: 'ECONNRESET',
        syscall: 'read',
        outage: true,
      });
    } finally {
      await db.destroy().catch(() => {});
      relay.close();
      await database.cleanup();
    }
  });

  it('PostgreSQL refusing a connection for too many clients (53300) is an outage', async () => {
    const role = `clipline_full_${randomUUID().slice(0, 8)}`;
    const admin = createDatabase({ url: postgresEngine.url, schema: 'public', poolSize: 1 });
    await sql.raw(`create role ${role} login connection limit 0`).execute(admin);
    const url = new URL(postgresEngine.url);
    url.username = role;
    const db = createDatabase({ url: url.toString(), schema: 'public', poolSize: 1 });
    try {
      const failure = (await sql`select 1`.execute(db).then(
        () => undefined,
        (error: unknown) => error,
      )) as { code?: string };
      expect({ code: failure?.code, outage: isDependencyOutage(failure) }).toEqual({ code: '53300', outage: true });
    } finally {
      await db.destroy().catch(() => {});
      await sql.raw(`drop role ${role}`).execute(admin);
      await admin.destroy();
    }
  });

  it.each(TEST_DATABASE_ENGINES)('a broken constraint on $name is not an outage: retrying cannot fix it', async ({ url }) => {
    const database = await createTestDatabase(url);
    try {
      const violation = await database.db
        .insertInto('scenes')
        .values({ video_id: randomUUID(), scene_index: 0, start_seconds: 0, end_seconds: 1 })
        .execute()
        .then(
          () => undefined,
          (error: unknown) => error,
        );
      expect(violation).toBeDefined();
      expect(isDependencyOutage(violation)).toBe(false);
    } finally {
      await database.cleanup();
    }
  });
});

describe('MySQL/MariaDB sessions', () => {
  it('run in UTC, in strict mode and with a statement timeout', async () => {
    const database = await createTestDatabase(mysqlEngine.url);
    try {
      const { rows } = await sql<{ zone: string; mode: string; timeout: number }>`
        select @@session.time_zone as zone, @@session.sql_mode as mode, @@session.max_statement_time as timeout`.execute(database.db);
      expect(rows[0]).toEqual({ zone: '+00:00', mode: expect.stringContaining('STRICT_ALL_TABLES'), timeout: 30 });
      // Strict mode: a value too long for its column is refused, not cut.
      const tooLong = await database.db
        .insertInto('api_keys')
        .values({ id: randomUUID(), name: 'x', prefix: 'p'.repeat(40), key_hash: Buffer.alloc(32), revoked_at: null, last_used_at: null })
        .execute()
        .then(
          () => undefined,
          (error: unknown) => error,
        );
      expect((tooLong as { code?: string }).code).toBe('ER_DATA_TOO_LONG');
    } finally {
      await database.cleanup();
    }
  });

  it('refuses a statement timeout that is not a positive number', () => {
    expect(() => createDatabase({ url: mysqlEngine.url, schema: 'public', poolSize: 1, statementTimeoutMs: Number.NaN })).toThrow(
      /statementTimeoutMs must be a positive number/,
    );
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
