import { sql, type Kysely } from 'kysely';
import { schemaTypes } from '../schema-types.js';

/**
 * Webhook deliveries as a transactional outbox: the row is written in the same transaction
 * that finishes the video, so a delivery can be late but never lost; one row per attempt keeps
 * the delivery log.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const t = schemaTypes(db);
  // Delivery ids come from the application on every engine; PostgreSQL keeps its default as well.
  await t
    .createTable('webhook_deliveries')
    .addColumn('id', t.uuid, (col) => (t.engine === 'postgres' ? col.primaryKey().defaultTo(sql`gen_random_uuid()`) : col.primaryKey()))
    .addColumn('video_id', t.uuid, (col) => col.notNull())
    .addColumn('event', t.string(32), (col) => col.notNull())
    .addColumn('url', 'text', (col) => col.notNull())
    .addColumn('state', t.string(16), (col) => col.notNull().defaultTo('pending').check(sql`state in ('pending', 'delivered', 'failed')`))
    .addColumn('attempts', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('last_status', 'integer')
    .addColumn('last_error', 'text')
    .addColumn('created_at', t.timestamp, (col) => col.notNull().defaultTo(t.now))
    .addColumn('updated_at', t.timestamp, (col) => col.notNull().defaultTo(t.now))
    .addColumn('delivered_at', t.timestamp)
    .addUniqueConstraint('webhook_deliveries_event_once', ['video_id', 'event'])
    .$call(t.cascadingReference('webhook_deliveries', 'video_id', 'videos'))
    .execute();
  await db.schema.createIndex('webhook_deliveries_pending_idx').on('webhook_deliveries').columns(['state', 'updated_at']).execute();

  await t
    .createTable('webhook_attempts')
    .addColumn('id', t.identity, (col) => t.identityColumn(col))
    .addColumn('delivery_id', t.uuid, (col) => col.notNull())
    .addColumn('attempt', 'integer', (col) => col.notNull())
    .addColumn('status_code', 'integer')
    .addColumn('error', 'text')
    .addColumn('duration_ms', 'integer', (col) => col.notNull())
    .addColumn('created_at', t.timestamp, (col) => col.notNull().defaultTo(t.now))
    .$call(t.cascadingReference('webhook_attempts', 'delivery_id', 'webhook_deliveries'))
    .execute();
  await db.schema.createIndex('webhook_attempts_delivery_idx').on('webhook_attempts').column('delivery_id').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('webhook_attempts').ifExists().execute();
  await db.schema.dropTable('webhook_deliveries').ifExists().execute();
}
