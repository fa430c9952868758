import type { Kysely } from 'kysely';

/**
 * A stored answer keeps its `Location` header, so a replay points where the first answer did
 * (a submitted video's address). Answers stored before this replay without it.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('idempotency_keys').addColumn('response_location', 'text').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('idempotency_keys').dropColumn('response_location').execute();
}
