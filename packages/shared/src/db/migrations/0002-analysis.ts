import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('videos').addColumn('content_sha256', 'char(64)').execute();
  await db.schema.createIndex('videos_content_sha256_idx').on('videos').column('content_sha256').execute();

  await db.schema
    .createTable('frame_metrics')
    .addColumn('video_id', 'uuid', (col) => col.notNull().references('videos.id').onDelete('cascade'))
    .addColumn('frame_index', 'integer', (col) => col.notNull().check(sql`frame_index >= 0`))
    .addColumn('time_seconds', 'double precision', (col) => col.notNull())
    .addColumn('luma', 'real', (col) => col.notNull())
    .addColumn('sharpness', 'real', (col) => col.notNull())
    .addColumn('motion', 'real', (col) => col.notNull())
    .addColumn('content_score', 'real', (col) => col.notNull())
    .addColumn('dhash', 'char(16)', (col) => col.notNull())
    .addColumn('histogram', sql`real[]`, (col) => col.notNull())
    .addPrimaryKeyConstraint('frame_metrics_pk', ['video_id', 'frame_index'])
    .execute();

  await db.schema
    .createTable('audio_loudness')
    .addColumn('video_id', 'uuid', (col) => col.primaryKey().references('videos.id').onDelete('cascade'))
    .addColumn('step_seconds', 'double precision', (col) => col.notNull().check(sql`step_seconds > 0`))
    .addColumn('short_term_lufs', sql`real[]`, (col) => col.notNull())
    .addColumn('integrated_lufs', 'real')
    .addColumn('loudness_range_lu', 'real')
    .execute();

  await db.schema
    .createTable('analyses')
    .addColumn('video_id', 'uuid', (col) => col.primaryKey().references('videos.id').onDelete('cascade'))
    .addColumn('content_sha256', 'char(64)', (col) => col.notNull())
    .addColumn('fingerprint', 'text', (col) => col.notNull())
    .addColumn('result', 'jsonb', (col) => col.notNull())
    .addColumn('completed_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('analyses_content_idx').on('analyses').columns(['content_sha256', 'fingerprint', 'completed_at']).execute();

  await db.schema
    .createTable('clips')
    .addColumn('id', 'uuid', (col) => col.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('video_id', 'uuid', (col) => col.notNull().references('videos.id').onDelete('cascade'))
    .addColumn('clip_index', 'integer', (col) => col.notNull().check(sql`clip_index >= 0`))
    .addColumn('start_seconds', 'double precision', (col) => col.notNull().check(sql`start_seconds >= 0`))
    .addColumn('end_seconds', 'double precision', (col) => col.notNull())
    .addColumn('score', 'real', (col) => col.notNull().check(sql`score between 0 and 100`))
    .addColumn('reasons', sql`text[]`, (col) => col.notNull().defaultTo(sql`'{}'`))
    .addColumn('aspect', 'text', (col) => col.notNull().check(sql`aspect in ('9:16', '1:1', '16:9')`))
    .addColumn('status', 'text', (col) => col.notNull().check(sql`status in ('pending', 'rendered', 'failed')`))
    .addColumn('storage_key', 'text')
    .addColumn('thumbnail_key', 'text')
    .addColumn('width', 'integer')
    .addColumn('height', 'integer')
    .addColumn('duration_seconds', 'double precision')
    .addColumn('error', 'text')
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('clips_video_clip_unique', ['video_id', 'clip_index'])
    .addCheckConstraint('clips_ordered', sql`end_seconds > start_seconds`)
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['clips', 'analyses', 'audio_loudness', 'frame_metrics']) {
    await db.schema.dropTable(table).ifExists().execute();
  }
  await db.schema.dropIndex('videos_content_sha256_idx').ifExists().execute();
  await db.schema.alterTable('videos').dropColumn('content_sha256').execute();
}
