import type { Kysely } from 'kysely';

/**
 * What an action on Bull Board's own API was, as asked (`PUT /api/queues/ingest/empty`): those
 * actions (a job retried, promoted or removed, a queue emptied or cleaned) are audited too.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('queue_actions').addColumn('detail', 'text').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('queue_actions').dropColumn('detail').execute();
}
