import { MysqlAdapter, PostgresAdapter, sql, SqliteAdapter, type InsertQueryBuilder, type Kysely, type RawBuilder, type UpdateObject } from 'kysely';
import type { DatabaseEngine } from './database-target.js';

/**
 * What differs between PostgreSQL, MySQL/MariaDB and SQLite in the statements the repositories
 * send. Everything else they write is plain SQL all three understand.
 */

/** The engine behind a Kysely instance (or one of its transactions). */
export function engineOf(db: Kysely<any>): DatabaseEngine {
  const adapter = db.getExecutor().adapter;
  if (adapter instanceof PostgresAdapter) return 'postgres';
  if (adapter instanceof MysqlAdapter) return 'mysql';
  if (adapter instanceof SqliteAdapter) return 'sqlite';
  throw new Error(`unsupported database adapter ${adapter.constructor.name}: clipline runs on PostgreSQL, MySQL/MariaDB and SQLite`);
}

/** SQLite keeps times as ISO-8601 text in UTC with milliseconds, the form `Date#toISOString` writes. */
const SQLITE_TIME_FORMAT = '%Y-%m-%dT%H:%M:%fZ';

/** Bind parameters one statement may carry: PostgreSQL and MySQL count them in 16 bits, SQLite allows 32766. */
const MAX_PARAMETERS: Readonly<Record<DatabaseEngine, number>> = { postgres: 65_535, mysql: 65_535, sqlite: 32_766 };

export interface PortableSql {
  readonly engine: DatabaseEngine;
  readonly maxParameters: number;
  /** The database's clock, so times written by every process compare on one clock. */
  now(): RawBuilder<Date>;
  /** The database's time `seconds` ago. */
  secondsAgo(seconds: number): RawBuilder<Date>;
  /** The database's time `seconds` from now. */
  secondsFromNow(seconds: number): RawBuilder<Date>;
  /** A uuid bound in a select list: PostgreSQL needs the type spelled out there, the others store text. */
  uuid(value: string): RawBuilder<string>;
  /**
   * A time column as text that gives the stored value back exactly through {@link timeAt} (PostgreSQL
   * keeps microseconds, which a JavaScript date would round away): a page cursor's position.
   */
  timeText(column: string): RawBuilder<string>;
  /** The time {@link timeText} wrote; the text must match {@link timeTextPattern}. */
  timeAt(text: string): RawBuilder<Date>;
  /** The form {@link timeText} writes on this engine. */
  readonly timeTextPattern: RegExp;
}

/** Per engine: the exact text of a stored time, the time back from it, and the text's form. */
const TIME_TEXT: Readonly<
  Record<DatabaseEngine, { write: (column: string) => RawBuilder<string>; read: (text: string) => RawBuilder<Date>; pattern: RegExp }>
> = {
  postgres: {
    // Microseconds since the epoch, a whole number: exact both ways.
    write: (column) => sql<string>`(extract(epoch from ${sql.ref(column)}) * 1000000)::bigint::text`,
    read: (text) => sql<Date>`(timestamptz 'epoch' + ${text}::bigint * interval '1 microsecond')`,
    // Microseconds since 1970, up to the year 2286: a cursor outside that was not written here.
    pattern: /^\d{1,16}$/,
  },
  mysql: {
    write: (column) => sql<string>`date_format(${sql.ref(column)}, '%Y-%m-%d %H:%i:%s.%f')`,
    read: (text) => sql<Date>`cast(${text} as datetime(6))`,
    pattern: /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}$/,
  },
  sqlite: {
    write: (column) => sql<string>`${sql.ref(column)}`,
    read: (text) => sql<Date>`${text}`,
    pattern: /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/,
  },
};

function shiftedNow(engine: DatabaseEngine, seconds: number): RawBuilder<Date> {
  switch (engine) {
    case 'postgres':
      return sql<Date>`now() + make_interval(secs => ${seconds})`;
    case 'mysql':
      return sql<Date>`timestampadd(microsecond, ${Math.round(seconds * 1e6)}, current_timestamp(3))`;
    case 'sqlite':
      return sql<Date>`strftime(${SQLITE_TIME_FORMAT}, 'now', ${`${seconds} seconds`})`;
  }
}

function dialectOf(engine: DatabaseEngine): PortableSql {
  const now =
    engine === 'postgres' ? sql<Date>`now()` : engine === 'mysql' ? sql<Date>`current_timestamp(3)` : sql<Date>`strftime(${SQLITE_TIME_FORMAT}, 'now')`;
  return {
    engine,
    maxParameters: MAX_PARAMETERS[engine],
    now: () => now,
    secondsAgo: (seconds) => shiftedNow(engine, -seconds),
    secondsFromNow: (seconds) => shiftedNow(engine, seconds),
    uuid: (value) => (engine === 'postgres' ? sql<string>`${value}::uuid` : sql<string>`${value}`),
    timeText: TIME_TEXT[engine].write,
    timeAt: TIME_TEXT[engine].read,
    timeTextPattern: TIME_TEXT[engine].pattern,
  };
}

const DIALECTS: Readonly<Record<DatabaseEngine, PortableSql>> = {
  postgres: dialectOf('postgres'),
  mysql: dialectOf('mysql'),
  sqlite: dialectOf('sqlite'),
};

export function portableSql(db: Kysely<any>): PortableSql {
  return DIALECTS[engineOf(db)];
}

type Columns<DB, TB extends keyof DB> = readonly (keyof DB[TB] & string)[];

/**
 * An insert that leaves a row with the same `key` as it is (`ON CONFLICT DO NOTHING`; on MySQL a
 * no-op `ON DUPLICATE KEY UPDATE`, since `INSERT IGNORE` would also hide other errors).
 */
export function ignoreDuplicates<DB, TB extends keyof DB, O>(
  insert: InsertQueryBuilder<DB, TB, O>,
  engine: DatabaseEngine,
  key: Columns<DB, TB>,
): InsertQueryBuilder<DB, TB, O> {
  const builder = insert as InsertQueryBuilder<any, any, O>;
  if (engine === 'mysql') {
    const first = key[0] as string;
    return builder.onDuplicateKeyUpdate({ [first]: sql.ref(first) }) as InsertQueryBuilder<DB, TB, O>;
  }
  return builder.onConflict((conflict) => conflict.columns([...key]).doNothing()) as InsertQueryBuilder<DB, TB, O>;
}

/**
 * An insert that, when a row with the same `key` exists, overwrites its `replace` columns with
 * the inserted values and sets `also` (an upsert on every engine).
 */
export function upsert<DB, TB extends keyof DB, O>(
  insert: InsertQueryBuilder<DB, TB, O>,
  engine: DatabaseEngine,
  key: Columns<DB, TB>,
  replace: Columns<DB, TB>,
  also: UpdateObject<DB, TB> = {} as UpdateObject<DB, TB>,
): InsertQueryBuilder<DB, TB, O> {
  const builder = insert as InsertQueryBuilder<any, any, O>;
  const extra = also as Record<string, unknown>;
  if (engine === 'mysql') {
    // VALUES(col) is the inserted value; both MySQL and MariaDB accept it.
    const set = Object.fromEntries(replace.map((column) => [column, sql`values(${sql.ref(column)})`]));
    return builder.onDuplicateKeyUpdate({ ...set, ...extra }) as InsertQueryBuilder<DB, TB, O>;
  }
  return builder.onConflict((conflict) =>
    conflict.columns([...key]).doUpdateSet((eb) => ({ ...Object.fromEntries(replace.map((column) => [column, eb.ref(`excluded.${column}`)])), ...extra })),
  ) as InsertQueryBuilder<DB, TB, O>;
}

/** Whether an error is a unique or primary key violation, on any engine. */
export function isUniqueViolation(error: unknown): boolean {
  const failure = error as { code?: unknown; errno?: unknown } | null;
  if (!failure || typeof failure !== 'object') return false;
  return (
    failure.code === '23505' ||
    failure.code === 'ER_DUP_ENTRY' ||
    failure.errno === 1062 ||
    failure.code === 'SQLITE_CONSTRAINT_UNIQUE' ||
    failure.code === 'SQLITE_CONSTRAINT_PRIMARYKEY'
  );
}
