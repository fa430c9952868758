import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('videos')
    .addColumn('id', 'uuid', (col) => col.primaryKey())
    .addColumn('status', 'text', (col) =>
      col.notNull().check(sql`status in ('queued', 'processing', 'completed', 'failed', 'cancelled')`),
    )
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
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('completed_at', 'timestamptz')
    .execute();
  await db.schema.createIndex('videos_status_created_idx').on('videos').columns(['status', 'created_at']).execute();

  await db.schema
    .createTable('video_steps')
    .addColumn('video_id', 'uuid', (col) => col.notNull().references('videos.id').onDelete('cascade'))
    .addColumn('step', 'text', (col) => col.notNull())
    .addColumn('status', 'text', (col) => col.notNull())
    .addColumn('reason', 'text')
    .addColumn('attempts', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('updated_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('video_steps_pk', ['video_id', 'step'])
    .execute();

  await db.schema
    .createTable('scenes')
    .addColumn('video_id', 'uuid', (col) => col.notNull().references('videos.id').onDelete('cascade'))
    .addColumn('scene_index', 'integer', (col) => col.notNull())
    .addColumn('start_seconds', 'double precision', (col) => col.notNull())
    .addColumn('end_seconds', 'double precision', (col) => col.notNull())
    .addPrimaryKeyConstraint('scenes_pk', ['video_id', 'scene_index'])
    .addCheckConstraint('scenes_ordered', sql`end_seconds >= start_seconds`)
    .execute();

  await db.schema
    .createTable('job_events')
    .addColumn('id', 'bigserial', (col) => col.primaryKey())
    .addColumn('video_id', 'uuid')
    .addColumn('queue', 'text', (col) => col.notNull())
    .addColumn('job_name', 'text', (col) => col.notNull())
    .addColumn('job_id', 'text', (col) => col.notNull())
    .addColumn('step', 'text')
    .addColumn('status', 'text', (col) => col.notNull())
    .addColumn('attempt', 'integer', (col) => col.notNull())
    .addColumn('reason', 'text')
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('job_events_video_idx').on('job_events').columns(['video_id', 'created_at']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['job_events', 'scenes', 'video_steps', 'videos']) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}
