import { type Kysely, sql } from 'kysely';
import { schemaTypes } from '../schema-types.js';

/**
 * Queue actions are audited before they run: `finished_at` is set when the action has run (null
 * while it runs, or if its process died meanwhile), `error` when it failed. Rows written before
 * this finished when they were written.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const t = schemaTypes(db);
  await db.schema.alterTable('queue_actions').addColumn('finished_at', t.timestamp).execute();
  await db.schema.alterTable('queue_actions').addColumn('error', 'text').execute();
  await sql`update queue_actions set finished_at = created_at`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('queue_actions').dropColumn('error').execute();
  await db.schema.alterTable('queue_actions').dropColumn('finished_at').execute();
}
