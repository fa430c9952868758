import { sql, type Kysely } from 'kysely';

/** What the AI steps produce: a transcript per video, and per clip its texts, generated thumbnail and voice-over. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('transcripts')
    .addColumn('video_id', 'uuid', (col) => col.primaryKey().references('videos.id').onDelete('cascade'))
    .addColumn('text', 'text', (col) => col.notNull())
    .addColumn('language', 'text')
    .addColumn('duration_seconds', 'double precision')
    .addColumn('segments', 'jsonb', (col) => col.notNull())
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createTable('clip_extras')
    .addColumn('clip_id', 'uuid', (col) => col.primaryKey())
    .addColumn('video_id', 'uuid', (col) => col.notNull().references('videos.id').onDelete('cascade'))
    .addColumn('title', 'text')
    .addColumn('caption', 'text')
    .addColumn('hashtags', 'jsonb')
    .addColumn('thumbnail_key', 'text')
    .addColumn('voiceover_key', 'text')
    .addColumn('updated_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('clip_extras_video_idx').on('clip_extras').column('video_id').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('clip_extras').ifExists().execute();
  await db.schema.dropTable('transcripts').ifExists().execute();
}
