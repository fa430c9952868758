import type { Kysely } from 'kysely';
import { schemaTypes } from '../schema-types.js';

/** What the AI steps produce: a transcript per video, and per clip its texts, generated thumbnail and voice-over. */
export async function up(db: Kysely<unknown>): Promise<void> {
  const t = schemaTypes(db);
  await t
    .createTable('transcripts')
    .addColumn('video_id', t.uuid, (col) => col.primaryKey())
    .addColumn('text', t.longText, (col) => col.notNull())
    .addColumn('language', 'text')
    .addColumn('duration_seconds', 'double precision')
    .addColumn('segments', t.json, (col) => col.notNull())
    .addColumn('created_at', t.timestamp, (col) => col.notNull().defaultTo(t.now))
    .$call(t.cascadingReference('transcripts', 'video_id', 'videos'))
    .execute();
  await t
    .createTable('clip_extras')
    .addColumn('clip_id', t.uuid, (col) => col.primaryKey())
    .addColumn('video_id', t.uuid, (col) => col.notNull())
    .addColumn('title', 'text')
    .addColumn('caption', 'text')
    .addColumn('hashtags', t.json)
    .addColumn('thumbnail_key', 'text')
    .addColumn('voiceover_key', 'text')
    .addColumn('updated_at', t.timestamp, (col) => col.notNull().defaultTo(t.now))
    .$call(t.cascadingReference('clip_extras', 'video_id', 'videos'))
    .execute();
  await db.schema.createIndex('clip_extras_video_idx').on('clip_extras').column('video_id').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('clip_extras').ifExists().execute();
  await db.schema.dropTable('transcripts').ifExists().execute();
}
