import type { Kysely } from 'kysely';
import { schemaTypes } from '../schema-types.js';

/** The purge of public job records past their jobs' retention reads them by age. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createIndex('public_jobs_created_idx').on('public_jobs').column('created_at').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  const dropIndex = db.schema.dropIndex('public_jobs_created_idx');
  await (schemaTypes(db).engine === 'mysql' ? dropIndex.on('public_jobs') : dropIndex.ifExists()).execute();
}
