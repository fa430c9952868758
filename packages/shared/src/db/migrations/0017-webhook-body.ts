import type { Kysely } from 'kysely';
import { schemaTypes } from '../schema-types.js';

/**
 * A delivery's body as first sent, so that each retry sends the same message under its
 * `webhook-id` (and the same video, as it was then); cleared once the delivery is settled.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('webhook_deliveries').addColumn('body', schemaTypes(db).longText).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('webhook_deliveries').dropColumn('body').execute();
}
