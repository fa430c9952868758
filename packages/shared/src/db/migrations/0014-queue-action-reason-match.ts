import type { Kysely } from 'kysely';

/**
 * How a retry's or discard's reason filter was matched: null (every action before this, and the
 * admin API's) a substring of the failure reason, `group` the reason's first line exactly, as the
 * dashboard groups failures.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('queue_actions').addColumn('reason_match', 'varchar(16)').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('queue_actions').dropColumn('reason_match').execute();
}
