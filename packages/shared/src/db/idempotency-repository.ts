import { randomUUID } from 'node:crypto';
import { deleteInBatches } from './batched-delete.js';
import type { Db } from './connection.js';
import { isUniqueViolation, portableSql, type PortableSql } from './portable-sql.js';
import { timeQueries } from './query-timing.js';

export type IdempotencyClaim =
  /** The caller holds the key: `token` completes or releases it, and nothing else does. */
  | { outcome: 'claimed'; token: string }
  | { outcome: 'replay'; status: number; body: unknown; location: string | null }
  | { outcome: 'in-progress' }
  | { outcome: 'mismatch' };

/**
 * Idempotency keys as the IETF draft describes them: the first request with a key claims it;
 * a repeat with the same body replays the stored response, with another body is refused, and
 * one that arrives while the first is still running is told so. Keys belong to a principal (the
 * API key), so two clients cannot collide, and expire after a while.
 */
export class IdempotencyRepository {
  private readonly dialect: PortableSql;

  constructor(
    private readonly db: Db,
    private readonly ttlSeconds = 24 * 3600,
    /** Seconds after which a request still "in progress" is taken to have died with its process. */
    private readonly leaseSeconds = 60,
  ) {
    this.dialect = portableSql(db);
  }

  /**
   * `sameRequestHashes`: other hashes the same request had (as an earlier release, or an earlier
   * key, made it), not a mismatch; a function is called only when the stored hash differs.
   */
  async claim(
    principal: string,
    key: string,
    requestHash: string,
    sameRequestHashes: readonly string[] | (() => readonly string[]) = [],
  ): Promise<IdempotencyClaim> {
    // An expired key is as good as new: clear it before trying to claim.
    await this.db
      .deleteFrom('idempotency_keys')
      .where('principal', '=', principal)
      .where('key', '=', key)
      .where('expires_at', '<', this.dialect.now())
      .execute();
    const token = randomUUID();
    if (await this.insertClaim(principal, key, requestHash, token)) return { outcome: 'claimed', token };
    const existing = await this.db
      .selectFrom('idempotency_keys')
      .select(['request_hash', 'state', 'response_status', 'response_body', 'response_location'])
      .where('principal', '=', principal)
      .where('key', '=', key)
      .executeTakeFirst();
    if (!existing) return this.claim(principal, key, requestHash, sameRequestHashes);
    if (existing.request_hash !== requestHash) {
      const same = typeof sameRequestHashes === 'function' ? sameRequestHashes() : sameRequestHashes;
      if (!same.includes(existing.request_hash)) return { outcome: 'mismatch' };
    }
    if (existing.state === 'in_progress') {
      // The first request died (crash, lost database) without releasing the key: after the lease,
      // take it over. Should it still be running, its token no longer completes or releases the key.
      const taken = await this.db
        .updateTable('idempotency_keys')
        .set({ created_at: this.dialect.now(), claim_token: token })
        .where('principal', '=', principal)
        .where('key', '=', key)
        .where('state', '=', 'in_progress')
        .where('created_at', '<', this.dialect.secondsAgo(this.leaseSeconds))
        .executeTakeFirst();
      return Number(taken.numUpdatedRows) > 0 ? { outcome: 'claimed', token } : { outcome: 'in-progress' };
    }
    return { outcome: 'replay', status: existing.response_status ?? 200, body: existing.response_body, location: existing.response_location ?? null };
  }

  /** Inserts the claim; false when the key is held already (the primary key says so on every engine). */
  private async insertClaim(principal: string, key: string, requestHash: string, token: string): Promise<boolean> {
    try {
      await this.db
        .insertInto('idempotency_keys')
        .values({
          principal,
          key,
          request_hash: requestHash,
          state: 'in_progress',
          response_status: null,
          response_body: null,
          expires_at: this.dialect.secondsFromNow(this.ttlSeconds),
          claim_token: token,
          response_location: null,
        })
        .execute();
      return true;
    } catch (error) {
      if (isUniqueViolation(error)) return false;
      throw error;
    }
  }

  /**
   * Stores the answer of the request holding the claim `token`; false when the claim was taken
   * over meanwhile (the answer of the request that took it is the one kept).
   */
  async complete(principal: string, key: string, token: string, status: number, body: unknown, location: string | null = null): Promise<boolean> {
    const result = await this.db
      .updateTable('idempotency_keys')
      .set({ state: 'completed', response_status: status, response_body: JSON.stringify(body), response_location: location })
      .where('principal', '=', principal)
      .where('key', '=', key)
      .where('state', '=', 'in_progress')
      .where('claim_token', '=', token)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  /** Gives the key up after a failure the client may retry (the request had no effect), if `token` still holds it. */
  async release(principal: string, key: string, token: string): Promise<void> {
    await this.db
      .deleteFrom('idempotency_keys')
      .where('principal', '=', principal)
      .where('key', '=', key)
      .where('state', '=', 'in_progress')
      .where('claim_token', '=', token)
      .execute();
  }

  /**
   * Deletes expired keys in batches of `batch`, at most `batches` a call: a table never purged
   * before holds a stored answer a key, and one statement over all of it could outlast the
   * statement timeout and never get anywhere.
   */
  async purgeExpired(batch = 1000, batches = 20): Promise<number> {
    return deleteInBatches(
      async (limit) => {
        const expired = await this.db
          .selectFrom('idempotency_keys')
          .select(['principal', 'key'])
          .where('expires_at', '<', this.dialect.now())
          .limit(limit)
          .execute();
        if (expired.length === 0) return { selected: 0, deleted: 0 };
        const result = await this.db
          .deleteFrom('idempotency_keys')
          .where((eb) => eb.or(expired.map((row) => eb.and([eb('principal', '=', row.principal), eb('key', '=', row.key)]))))
          .where('expires_at', '<', this.dialect.now())
          .executeTakeFirst();
        return { selected: expired.length, deleted: Number(result.numDeletedRows) };
      },
      batch,
      batches,
    );
  }
}

timeQueries(IdempotencyRepository, 'idempotency');
