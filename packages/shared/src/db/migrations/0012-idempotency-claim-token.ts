import type { Kysely } from 'kysely';
import { schemaTypes } from '../schema-types.js';

/**
 * Each claim of an idempotency key carries a token of its own: only the request holding the
 * claim completes or releases the key, so a first request that outlived its lease cannot
 * release the key a retry took over (and let a third run the request again). Keys claimed
 * before this have none, and are completed or released as before.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const t = schemaTypes(db);
  await db.schema.alterTable('idempotency_keys').addColumn('claim_token', t.string(36)).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('idempotency_keys').dropColumn('claim_token').execute();
}
