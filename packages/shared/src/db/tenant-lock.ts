import { createHash } from 'node:crypto';
import { sql, type Transaction } from 'kysely';
import type { Db } from './connection.js';
import { engineOf } from './portable-sql.js';
import type { Database } from './schema.js';

/** How long a transaction waits for another of the same tenant and purpose before it gives up. */
const LOCK_TIMEOUT_SECONDS = 10;

/** PostgreSQL's code for a lock not granted within `lock_timeout`. */
const LOCK_NOT_AVAILABLE = '55P03';

/** A lock waited for too long: a busy database, which the API answers with 503 and a retry. */
function lockTimedOut(purpose: string, seconds: number): Error {
  return Object.assign(new Error(`another ${purpose} of this tenant held its lock for ${seconds} s`), { code: 'ETIMEDOUT' });
}

/**
 * Runs `work` in a transaction that no other of the same `purpose` and `tenant` runs beside:
 * what it reads is what the previous one committed, and what it writes is seen by the next.
 * PostgreSQL holds a transaction-scoped advisory lock; SQLite's `begin immediate` admits one
 * writer at a time already; MySQL holds a named lock, taken and released on the transaction's
 * connection around it, so it is held until the commit (one released at commit would let the
 * next read before the rows are visible; a lost connection releases it). Row locks would not
 * do: a count or a row that is not there yet has nothing to lock, and InnoDB's gap locks turn
 * two such transactions into a deadlock.
 */
export async function inTenantTransaction<T>(
  db: Db,
  purpose: string,
  tenant: string,
  work: (trx: Transaction<Database>) => Promise<T>,
  timeoutSeconds = LOCK_TIMEOUT_SECONDS,
): Promise<T> {
  const name = `clipline:${createHash('sha256').update(`${purpose}\n${tenant}`).digest('hex').slice(0, 40)}`;
  switch (engineOf(db)) {
    case 'postgres':
      // Read committed whatever the server's default: each statement after the lock then sees
      // what the previous holder committed (a snapshot taken when the transaction began would not).
      return db
        .transaction()
        .setIsolationLevel('read committed')
        .execute(async (trx) => {
          await sql.raw(`set local lock_timeout = '${Math.round(timeoutSeconds * 1000)}ms'`).execute(trx);
          await sql`select pg_advisory_xact_lock(hashtextextended(${name}, 0))`.execute(trx).catch((error: unknown) => {
            throw (error as { code?: string }).code === LOCK_NOT_AVAILABLE ? lockTimedOut(purpose, timeoutSeconds) : error;
          });
          return work(trx);
        });
    case 'mysql':
      return db.connection().execute(async (connection) => {
        const { rows } = await sql<{ got: number | null }>`select get_lock(${name}, ${timeoutSeconds}) as got`.execute(connection);
        if (Number(rows[0]?.got) !== 1) throw lockTimedOut(purpose, timeoutSeconds);
        try {
          return await connection.transaction().execute(work);
        } finally {
          await sql`select release_lock(${name})`.execute(connection);
        }
      });
    case 'sqlite':
      return db.transaction().execute(work);
  }
}
