import type { Kysely } from 'kysely';
import { schemaTypes } from '../schema-types.js';

/** The audit of operators' queue actions: bulk retries and discards of failed jobs, pauses, resumes. */
export async function up(db: Kysely<unknown>): Promise<void> {
  const t = schemaTypes(db);
  await t
    .createTable('queue_actions')
    .addColumn('id', t.uuid, (col) => col.primaryKey())
    .addColumn('actor', t.string(200), (col) => col.notNull())
    .addColumn('actor_kind', t.string(20), (col) => col.notNull())
    .addColumn('tenant_id', t.string(200))
    .addColumn('action', t.string(20), (col) => col.notNull())
    .addColumn('queue', t.string(100), (col) => col.notNull())
    .addColumn('reason_filter', 'text')
    .addColumn('affected', 'integer', (col) => col.notNull())
    .addColumn('created_at', t.timestamp, (col) => col.notNull().defaultTo(t.now))
    .execute();
  await db.schema.createIndex('queue_actions_created_idx').on('queue_actions').column('created_at').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('queue_actions').ifExists().execute();
}
