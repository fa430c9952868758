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
  const tenantColumn = (table: string) =>
    db.schema
      .alterTable(table)
      .addColumn('tenant_id', t.string(128), (col) => col.notNull().defaultTo('legacy'))
      .execute();
  await tenantColumn('videos');
  await tenantColumn('users');
  await tenantColumn('webhook_deliveries');
  await db.schema.createIndex('videos_tenant_created_idx').on('videos').columns(['tenant_id', 'created_at', 'id']).execute();
  await db.schema.createIndex('videos_tenant_status_idx').on('videos').columns(['tenant_id', 'status']).execute();
  await emailUniquePerTenant(db, true);

  await db.schema
    .alterTable('api_keys')
    .addColumn('tenant_id', t.string(128), (col) => col.notNull().defaultTo('legacy'))
    .execute();
  await db.schema
    .alterTable('api_keys')
    .addColumn('role', t.string(16), (col) => col.notNull().defaultTo('tenant'))
    .execute();
  await backfillKeyTenants(db);
  await backfillVideoTenants(db);
  // A delivery whose video is gone keeps `legacy`: the column may not be null.
  await db
    .updateTable('webhook_deliveries')
    .set({
      tenant_id: (eb: any) =>
        eb.fn.coalesce(eb.selectFrom('videos').select('videos.tenant_id').whereRef('videos.id', '=', 'webhook_deliveries.video_id'), sql.lit('legacy')),
    })
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

/**
 * An email is unique within its tenant, not across tenants: otherwise registering an address
 * another tenant already has would answer 409 and tell one tenant about another's users.
 * SQLite cannot drop a column's UNIQUE constraint, so there the users table is rebuilt.
 */
async function emailUniquePerTenant(db: Kysely<any>, perTenant: boolean): Promise<void> {
  const t = schemaTypes(db);
  const key = perTenant ? ['tenant_id'] : [];
  if (t.engine === 'postgres') {
    await sql`drop index if exists users_email_unique`.execute(db);
    await sql`create unique index users_email_unique on users (${sql.raw([...key, 'lower(email)'].join(', '))})`.execute(db);
  } else if (t.engine === 'mysql') {
    const name = perTenant ? 'email_lower' : 'users_email_unique';
    await sql`alter table users drop index ${sql.id(name)}`.execute(db);
    await sql`alter table users add unique index ${sql.id(perTenant ? 'users_email_unique' : 'email_lower')} (${sql.raw([...key, 'email_lower'].join(', '))})`.execute(
      db,
    );
  } else {
    const tenant = perTenant ? `, tenant_id text not null default 'legacy'` : '';
    const unique = perTenant ? 'unique (tenant_id, email_lower)' : 'unique (email_lower)';
    await sql
      .raw(`create table users_rebuilt (
      id text primary key, email text not null, name text, password_hash text,
      status text not null default 'pending' check (status in ('pending', 'active', 'failed')), failure text,
      created_at text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')), activated_at text, welcomed_at text,
      email_lower text not null${tenant}, ${unique})`)
      .execute(db);
    const columns = `id, email, name, password_hash, status, failure, created_at, activated_at, welcomed_at, email_lower${perTenant ? ', tenant_id' : ''}`;
    await sql.raw(`insert into users_rebuilt (${columns}) select ${columns} from users`).execute(db);
    await sql`drop table users`.execute(db);
    await sql`alter table users_rebuilt rename to users`.execute(db);
  }
  if (perTenant) await db.schema.createIndex('users_tenant_idx').on('users').column('tenant_id').execute();
}

/**
 * A key made before tenants existed is a tenant of its own: named after the key (folded as new
 * tenant names are) when no other key has that name, else `key-<its id>`, so two old keys never
 * share a tenant, and none takes the `legacy` or `default` tenant of unowned rows.
 */
async function backfillKeyTenants(db: Kysely<any>): Promise<void> {
  const keys = (await db.selectFrom('api_keys').select(['id', 'name']).execute()) as { id: string; name: string }[];
  const fold = (name: string) =>
    name
      .toLowerCase()
      .replace(/[^a-z0-9_.-]+/g, '-')
      .replace(/^[^a-z0-9]+/, '')
      .slice(0, 128);
  const counts = new Map<string, number>();
  for (const key of keys) counts.set(fold(key.name), (counts.get(fold(key.name)) ?? 0) + 1);
  for (const key of keys) {
    const folded = fold(key.name);
    const own = folded !== '' && counts.get(folded) === 1 && folded !== 'legacy' && folded !== 'default' && !/^(key|admin)-/.test(folded);
    await db
      .updateTable('api_keys')
      .set({ tenant_id: own ? folded : `key-${key.id}` })
      .where('id', '=', key.id)
      .execute();
  }
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
  await emailUniquePerTenant(db, false);
  for (const table of ['videos', 'webhook_deliveries', 'api_keys']) await db.schema.alterTable(table).dropColumn('tenant_id').execute();
  if (t.engine !== 'sqlite') await db.schema.alterTable('users').dropColumn('tenant_id').execute();
  await db.schema.alterTable('api_keys').dropColumn('role').execute();
}
