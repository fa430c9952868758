import { sql, type Kysely } from 'kysely';
import { schemaTypes } from '../schema-types.js';

export async function up(db: Kysely<unknown>): Promise<void> {
  const t = schemaTypes(db);
  await db.schema.alterTable('videos').addColumn('content_sha256', 'char(64)').execute();
  await db.schema.createIndex('videos_content_sha256_idx').on('videos').column('content_sha256').execute();

  await t
    .createTable('frame_metrics')
    .addColumn('video_id', t.uuid, (col) => col.notNull())
    .addColumn('frame_index', 'integer', (col) => col.notNull().check(sql`frame_index >= 0`))
    .addColumn('time_seconds', 'double precision', (col) => col.notNull())
    .addColumn('luma', 'real', (col) => col.notNull())
    .addColumn('sharpness', 'real', (col) => col.notNull())
    .addColumn('motion', 'real', (col) => col.notNull())
    .addColumn('content_score', 'real', (col) => col.notNull())
    .addColumn('dhash', 'char(16)', (col) => col.notNull())
    .addColumn('histogram', t.floatArray, (col) => col.notNull())
    .addPrimaryKeyConstraint('frame_metrics_pk', ['video_id', 'frame_index'])
    .$call(t.cascadingReference('frame_metrics', 'video_id', 'videos'))
    .execute();

  await t
    .createTable('audio_loudness')
    .addColumn('video_id', t.uuid, (col) => col.primaryKey())
    .addColumn('step_seconds', 'double precision', (col) => col.notNull().check(sql`step_seconds > 0`))
    .addColumn('short_term_lufs', t.floatArray, (col) => col.notNull())
    .addColumn('integrated_lufs', 'real')
    .addColumn('loudness_range_lu', 'real')
    .$call(t.cascadingReference('audio_loudness', 'video_id', 'videos'))
    .execute();

  await t
    .createTable('analyses')
    .addColumn('video_id', t.uuid, (col) => col.primaryKey())
    .addColumn('content_sha256', 'char(64)', (col) => col.notNull())
    .addColumn('fingerprint', t.string(512), (col) => col.notNull())
    .addColumn('result', t.json, (col) => col.notNull())
    .addColumn('completed_at', t.timestamp, (col) => col.notNull().defaultTo(t.now))
    .$call(t.cascadingReference('analyses', 'video_id', 'videos'))
    .execute();
  await db.schema.createIndex('analyses_content_idx').on('analyses').columns(['content_sha256', 'fingerprint', 'completed_at']).execute();

  // Clip ids come from the application on every engine; PostgreSQL keeps its default as well.
  await t
    .createTable('clips')
    .addColumn('id', t.uuid, (col) => (t.engine === 'postgres' ? col.primaryKey().defaultTo(sql`gen_random_uuid()`) : col.primaryKey()))
    .addColumn('video_id', t.uuid, (col) => col.notNull())
    .addColumn('clip_index', 'integer', (col) => col.notNull().check(sql`clip_index >= 0`))
    .addColumn('start_seconds', 'double precision', (col) => col.notNull().check(sql`start_seconds >= 0`))
    .addColumn('end_seconds', 'double precision', (col) => col.notNull())
    .addColumn('score', 'real', (col) => col.notNull().check(sql`score between 0 and 100`))
    .addColumn('reasons', t.textArray, (col) => col.notNull().defaultTo(t.emptyTextArray))
    .addColumn('aspect', t.string(8), (col) => col.notNull().check(sql`aspect in ('9:16', '1:1', '16:9')`))
    .addColumn('status', t.string(16), (col) => col.notNull().check(sql`status in ('pending', 'rendered', 'failed')`))
    .addColumn('storage_key', 'text')
    .addColumn('thumbnail_key', 'text')
    .addColumn('width', 'integer')
    .addColumn('height', 'integer')
    .addColumn('duration_seconds', 'double precision')
    .addColumn('error', 'text')
    .addColumn('created_at', t.timestamp, (col) => col.notNull().defaultTo(t.now))
    .addColumn('updated_at', t.timestamp, (col) => col.notNull().defaultTo(t.now))
    .addUniqueConstraint('clips_video_clip_unique', ['video_id', 'clip_index'])
    .addCheckConstraint('clips_ordered', sql`end_seconds > start_seconds`)
    .$call(t.cascadingReference('clips', 'video_id', 'videos'))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['clips', 'analyses', 'audio_loudness', 'frame_metrics']) {
    await db.schema.dropTable(table).ifExists().execute();
  }
  const t = schemaTypes(db);
  const dropIndex = db.schema.dropIndex('videos_content_sha256_idx');
  await (t.engine === 'mysql' ? dropIndex.on('videos') : dropIndex.ifExists()).execute();
  await db.schema.alterTable('videos').dropColumn('content_sha256').execute();
}
