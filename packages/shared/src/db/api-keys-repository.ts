import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { Db } from './connection.js';
import { isUniqueViolation, portableSql, type PortableSql } from './portable-sql.js';
import { timeQueries } from './query-timing.js';
import type { ApiKeyRole } from './schema.js';
import { TENANT_PATTERN } from '../tenancy.js';
import { hasControlCharacters } from '../text.js';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const PUBLIC_ID_LENGTH = 12;
/** 32 base62 characters ≈ 190 random bits: far beyond guessing, so a fast digest is enough. */
const SECRET_LENGTH = 32;
const KEY_PATTERN = /^(cl_[0-9A-Za-z]{12})_[0-9A-Za-z]{32}$/;
const PREFIX_PATTERN = /^cl_[0-9A-Za-z]{12}$/;
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const LAST_USED_RESOLUTION_MS = 60_000;
const MAX_NAME_LENGTH = 100;

/** A key just created. `key` is the only time the plain key exists: it is not stored. */
export interface CreatedApiKey {
  id: string;
  name: string;
  /** The public start of the key (`cl_<publicId>`), safe to show and log. */
  prefix: string;
  key: string;
  tenant: string;
  role: ApiKeyRole;
}

export interface NewApiKeyOptions {
  /** The tenant the key acts for. @defaultValue the key's name, folded to a tenant name */
  tenant?: string;
  /** Operator key: sees and acts on every tenant's work. @defaultValue false */
  admin?: boolean;
}

export interface ApiKeyInfo {
  id: string;
  name: string;
  prefix: string;
  createdAt: Date;
  /** Accurate to a minute: uses are recorded at most once a minute per key. */
  lastUsedAt: Date | null;
  revokedAt: Date | null;
  tenant: string;
  role: ApiKeyRole;
}

export interface VerifiedApiKey {
  id: string;
  name: string;
  tenant: string;
  role: ApiKeyRole;
}

export type ApiKeyRevocation = 'revoked' | 'already-revoked' | 'not-found';

/** Every character equally likely: bytes ≥ 248 (= 4 × 62) are dropped instead of folded. */
function randomBase62(length: number): string {
  let text = '';
  while (text.length < length) {
    for (const byte of randomBytes(length)) {
      if (byte < 248 && text.length < length) text += BASE62[byte % 62];
    }
  }
  return text;
}

const digest = (key: string) => createHash('sha256').update(key, 'utf8').digest();

function checkedName(name: string): string {
  const trimmed = name.trim();
  if (trimmed.length === 0 || trimmed.length > MAX_NAME_LENGTH || hasControlCharacters(trimmed)) {
    throw new RangeError(`API key name must be 1-${MAX_NAME_LENGTH} printable characters, got ${JSON.stringify(name.slice(0, 120))}`);
  }
  return trimmed;
}

/**
 * Tenants that hold records of callers other than database keys: `default` (direct producers),
 * `legacy`, and the config keys' `key-<digest>` and `admin-<digest>`. A key's name never makes
 * one of them its tenant; an operator who means it names the tenant.
 */
const RESERVED_TENANT = /^(?:default|legacy|key-.*|admin-.*)$/;

/** A tenant name from what was asked for, or from the key's name (`My Service` → `my-service`). */
function checkedTenant(tenant: string | undefined, name: string): string {
  const value =
    tenant ??
    name
      .toLowerCase()
      .replace(/[^a-z0-9_.-]+/g, '-')
      .replace(/^[^a-z0-9]+/, '')
      .slice(0, 128);
  if (!TENANT_PATTERN.test(value)) {
    throw new RangeError(
      `tenant must be 1-128 lower-case letters, digits, ".", "_" or "-", starting with a letter or digit; got ${JSON.stringify(value.slice(0, 130))}`,
    );
  }
  if (tenant === undefined && RESERVED_TENANT.test(value)) {
    throw new RangeError(`the key's name would make its tenant "${value}", which is reserved (it holds records of other callers): name the tenant explicitly`);
  }
  return value;
}

/**
 * API keys kept hashed in the database, in the form `cl_<publicId>_<secret>`. The public id
 * finds the row; the SHA-256 of the whole key is compared in constant time. Revoked keys never
 * verify again.
 */
export class ApiKeysRepository {
  private readonly dialect: PortableSql;

  constructor(private readonly db: Db) {
    this.dialect = portableSql(db);
  }

  async create(name: string, options: NewApiKeyOptions = {}): Promise<CreatedApiKey> {
    const cleanName = checkedName(name);
    const tenant = checkedTenant(options.tenant, cleanName);
    const role: ApiKeyRole = options.admin ? 'admin' : 'tenant';
    // A public id collision (about 2^-35 per pair) is answered by drawing a new one.
    for (let attempt = 1; ; attempt += 1) {
      const prefix = `cl_${randomBase62(PUBLIC_ID_LENGTH)}`;
      const key = `${prefix}_${randomBase62(SECRET_LENGTH)}`;
      const id = randomUUID();
      try {
        await this.db
          .insertInto('api_keys')
          .values({ id, name: cleanName, prefix, key_hash: digest(key), revoked_at: null, last_used_at: null, tenant_id: tenant, role })
          .execute();
        return { id, name: cleanName, prefix, key, tenant, role };
      } catch (error) {
        if (!isUniqueViolation(error) || attempt >= 3) throw error;
      }
    }
  }

  /** Every key, revoked ones included, oldest first. */
  async list(): Promise<ApiKeyInfo[]> {
    const rows = await this.db
      .selectFrom('api_keys')
      .select(['id', 'name', 'prefix', 'created_at', 'last_used_at', 'revoked_at', 'tenant_id', 'role'])
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    return rows.map((row) => ({
      id: row.id,
      name: row.name,
      prefix: row.prefix,
      createdAt: row.created_at,
      lastUsedAt: row.last_used_at,
      revokedAt: row.revoked_at,
      tenant: row.tenant_id,
      role: row.role,
    }));
  }

  /**
   * Revokes a key named by its id, its public prefix (`cl_…`, as `list` shows it) or the whole
   * key (for a key that leaked). Revoking twice is harmless.
   */
  async revoke(idOrPrefix: string): Promise<ApiKeyRevocation> {
    const reference = idOrPrefix.trim();
    const prefix = KEY_PATTERN.exec(reference)?.[1] ?? (PREFIX_PATTERN.test(reference) ? reference : undefined);
    if (prefix === undefined && !UUID_PATTERN.test(reference)) return 'not-found';
    const column = prefix === undefined ? 'id' : 'prefix';
    const value = prefix ?? reference.toLowerCase();
    const revoked = await this.db
      .updateTable('api_keys')
      .set({ revoked_at: this.dialect.now() })
      .where(column, '=', value)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    if (Number(revoked.numUpdatedRows) > 0) return 'revoked';
    const existing = await this.db.selectFrom('api_keys').select('id').where(column, '=', value).executeTakeFirst();
    return existing ? 'already-revoked' : 'not-found';
  }

  /**
   * The key's id and name when `presented` is a live key, otherwise null. Malformed keys are
   * refused without a database round trip.
   */
  async verify(presented: string): Promise<VerifiedApiKey | null> {
    const prefix = KEY_PATTERN.exec(presented)?.[1];
    if (prefix === undefined) return null;
    const row = await this.db
      .selectFrom('api_keys')
      .select(['id', 'name', 'key_hash', 'revoked_at', 'last_used_at', 'tenant_id', 'role'])
      .where('prefix', '=', prefix)
      .executeTakeFirst();
    if (!row) return null;
    const presentedHash = digest(presented);
    if (row.key_hash.length !== presentedHash.length || !timingSafeEqual(row.key_hash, presentedHash)) return null;
    if (row.revoked_at !== null) return null;
    if (row.last_used_at === null || Date.now() - row.last_used_at.getTime() >= LAST_USED_RESOLUTION_MS) await this.recordUse(row.id);
    return { id: row.id, name: row.name, tenant: row.tenant_id, role: row.role };
  }

  /**
   * The condition is repeated in SQL so that replicas verifying the same key at once still write
   * at most once a minute. A failed write must not refuse a valid key, so it is ignored.
   */
  private async recordUse(id: string): Promise<void> {
    await this.db
      .updateTable('api_keys')
      .set({ last_used_at: this.dialect.now() })
      .where('id', '=', id)
      .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', this.dialect.secondsAgo(LAST_USED_RESOLUTION_MS / 1000))]))
      .execute()
      .catch(() => {});
  }
}

timeQueries(ApiKeysRepository, 'apiKeys');
