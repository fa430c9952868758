import { sql, type Kysely } from 'kysely';
import { schemaTypes } from '../schema-types.js';

export async function up(db: Kysely<unknown>): Promise<void> {
  const t = schemaTypes(db);
  await t
    .createTable('videos')
    .addColumn('id', t.uuid, (col) => col.primaryKey())
    .addColumn('status', t.string(16), (col) => col.notNull().check(sql`status in ('queued', 'processing', 'completed', 'failed', 'cancelled')`))
    .addColumn('progress', 'integer', (col) => col.notNull().defaultTo(0).check(sql`progress between 0 and 100`))
    .addColumn('title', 'text')
    .addColumn('source', 'text', (col) => col.notNull())
    .addColumn('error', 'text')
    .addColumn('storage_key', 'text')
    .addColumn('size_bytes', 'bigint')
    .addColumn('duration_seconds', 'double precision')
    .addColumn('width', 'integer')
    .addColumn('height', 'integer')
    .addColumn('fps', 'double precision')
    .addColumn('has_audio', 'boolean')
    .addColumn('video_codec', 'text')
    .addColumn('created_at', t.timestamp, (col) => col.notNull().defaultTo(t.now))
    .addColumn('updated_at', t.timestamp, (col) => col.notNull().defaultTo(t.now))
    .addColumn('completed_at', t.timestamp)
    .execute();
  await db.schema.createIndex('videos_status_created_idx').on('videos').columns(['status', 'created_at']).execute();

  await t
    .createTable('video_steps')
    .addColumn('video_id', t.uuid, (col) => col.notNull())
    .addColumn('step', t.string(64), (col) => col.notNull())
    .addColumn('status', 'text', (col) => col.notNull())
    .addColumn('reason', 'text')
    .addColumn('attempts', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('updated_at', t.timestamp, (col) => col.notNull().defaultTo(t.now))
    .addPrimaryKeyConstraint('video_steps_pk', ['video_id', 'step'])
    .$call(t.cascadingReference('video_steps', 'video_id', 'videos'))
    .execute();

  await t
    .createTable('scenes')
    .addColumn('video_id', t.uuid, (col) => col.notNull())
    .addColumn('scene_index', 'integer', (col) => col.notNull())
    .addColumn('start_seconds', 'double precision', (col) => col.notNull())
    .addColumn('end_seconds', 'double precision', (col) => col.notNull())
    .addPrimaryKeyConstraint('scenes_pk', ['video_id', 'scene_index'])
    .addCheckConstraint('scenes_ordered', sql`end_seconds >= start_seconds`)
    .$call(t.cascadingReference('scenes', 'video_id', 'videos'))
    .execute();

  await t
    .createTable('job_events')
    .addColumn('id', t.identity, (col) => t.identityColumn(col))
    .addColumn('video_id', t.uuid)
    .addColumn('queue', 'text', (col) => col.notNull())
    .addColumn('job_name', 'text', (col) => col.notNull())
    .addColumn('job_id', 'text', (col) => col.notNull())
    .addColumn('step', 'text')
    .addColumn('status', 'text', (col) => col.notNull())
    .addColumn('attempt', 'integer', (col) => col.notNull())
    .addColumn('reason', 'text')
    .addColumn('created_at', t.timestamp, (col) => col.notNull().defaultTo(t.now))
    .execute();
  await db.schema.createIndex('job_events_video_idx').on('job_events').columns(['video_id', 'created_at']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['job_events', 'scenes', 'video_steps', 'videos']) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}
