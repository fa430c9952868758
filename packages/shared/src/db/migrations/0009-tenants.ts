import { sql, type Kysely } from 'kysely';
import { schemaTypes } from '../schema-types.js';

/**
 * Tenancy: every video, user, webhook delivery and API-submitted job records the tenant that
 * owns it, API keys name their tenant and role, and each tenant signs its webhooks with secrets
 * of its own. Rows written before tenants existed are given the tenant of the key that
 * submitted them (the principal kept in `submitted_by`), or `legacy` when none is known.
 */
export async function up(db: Kysely<any>): Promise<void> {
  const t = schemaTypes(db);
  const tenantColumn = (table: string) => db.schema.alterTable(table).addColumn('tenant_id', t.string(128), (col) => col.notNull().defaultTo('legacy')).execute();
  await tenantColumn('videos');
  await tenantColumn('users');
  await tenantColumn('webhook_deliveries');
  await db.schema.createIndex('videos_tenant_created_idx').on('videos').columns(['tenant_id', 'created_at', 'id']).execute();
  await db.schema.createIndex('videos_tenant_status_idx').on('videos').columns(['tenant_id', 'status']).execute();
  await db.schema.createIndex('users_tenant_idx').on('users').column('tenant_id').execute();

  await db.schema.alterTable('api_keys').addColumn('tenant_id', t.string(128), (col) => col.notNull().defaultTo('legacy')).execute();
  await db.schema.alterTable('api_keys').addColumn('role', t.string(16), (col) => col.notNull().defaultTo('tenant')).execute();
  // A key made before tenants existed is its own tenant, named after the key.
  await db.updateTable('api_keys').set({ tenant_id: sql`name` }).execute();
  await backfillVideoTenants(db);
  await db
    .updateTable('webhook_deliveries')
    .set({ tenant_id: (eb: any) => eb.selectFrom('videos').select('videos.tenant_id').whereRef('videos.id', '=', 'webhook_deliveries.video_id') })
    .execute();

  await t
    .createTable('webhook_secrets')
    .addColumn('id', t.uuid, (col) => col.primaryKey())
    .addColumn('tenant_id', t.string(128), (col) => col.notNull())
    /** The `whsec_…` secret, sealed under the accounts keyring and bound to its tenant. */
    .addColumn('sealed_secret', 'text', (col) => col.notNull())
    .addColumn('created_at', t.timestamp, (col) => col.notNull().defaultTo(t.now))
    /** Null while current; a rotated secret keeps signing until this time. */
    .addColumn('expires_at', t.timestamp)
    .execute();
  await db.schema.createIndex('webhook_secrets_tenant_idx').on('webhook_secrets').columns(['tenant_id', 'created_at']).execute();

  await t
    .createTable('public_jobs')
    .addColumn('id', t.string(200), (col) => col.primaryKey())
    .addColumn('tenant_id', t.string(128), (col) => col.notNull())
    .addColumn('queue', t.string(64), (col) => col.notNull())
    .addColumn('name', t.string(64), (col) => col.notNull())
    .addColumn('created_at', t.timestamp, (col) => col.notNull().defaultTo(t.now))
    .execute();
  await db.schema.createIndex('public_jobs_tenant_idx').on('public_jobs').columns(['tenant_id', 'created_at']).execute();
}

/** `config:<digest>` principals become `key-<digest>` tenants; `key:<id>` ones take their key's tenant. */
async function backfillVideoTenants(db: Kysely<any>): Promise<void> {
  const principals = await db.selectFrom('videos').select('submitted_by').distinct().where('submitted_by', 'is not', null).execute();
  for (const { submitted_by: principal } of principals as { submitted_by: string }[]) {
    let tenant: string | undefined;
    if (principal.startsWith('config:')) tenant = `key-${principal.slice('config:'.length)}`;
    else if (principal.startsWith('key:')) {
      const key = await db.selectFrom('api_keys').select('tenant_id').where('id', '=', principal.slice('key:'.length)).executeTakeFirst();
      tenant = (key as { tenant_id?: string } | undefined)?.tenant_id;
    }
    if (tenant) await db.updateTable('videos').set({ tenant_id: tenant }).where('submitted_by', '=', principal).execute();
  }
}

export async function down(db: Kysely<any>): Promise<void> {
  const t = schemaTypes(db);
  await db.schema.dropTable('public_jobs').ifExists().execute();
  await db.schema.dropTable('webhook_secrets').ifExists().execute();
  const dropIndex = (name: string, table: string) => {
    const builder = db.schema.dropIndex(name);
    return (t.engine === 'mysql' ? builder.on(table) : builder.ifExists()).execute();
  };
  await dropIndex('videos_tenant_created_idx', 'videos');
  await dropIndex('videos_tenant_status_idx', 'videos');
  await dropIndex('users_tenant_idx', 'users');
  for (const table of ['videos', 'users', 'webhook_deliveries', 'api_keys']) await db.schema.alterTable(table).dropColumn('tenant_id').execute();
  await db.schema.alterTable('api_keys').dropColumn('role').execute();
}
