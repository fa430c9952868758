import { randomBytes, randomUUID } from 'node:crypto';
import { decryptSecret, encryptSecret, reencryptSecret, SecretDecryptionError, type Keyring } from '../crypto/index.js';
import type { Db } from './connection.js';
import { portableSql, type PortableSql } from './portable-sql.js';
import { timeQueries } from './query-timing.js';
import { inTenantTransaction } from './tenant-lock.js';

/** How long a rotated secret keeps signing beside its successor, so receivers can switch over. */
export const WEBHOOK_SECRET_OVERLAP_SECONDS = 24 * 3600;

export interface WebhookSecretView {
  /** `whsec_<base64 of 32 random bytes>`, as Standard Webhooks libraries take it. */
  secret: string;
  createdAt: Date;
}

/** A fresh Standard Webhooks secret: 32 random bytes, base64, behind the `whsec_` prefix. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

/**
 * Each tenant's webhook signing secrets, sealed at rest under the accounts keyring and bound to
 * their tenant (a sealed secret copied to another tenant's row does not open). A tenant gets its
 * first secret when it first asks for it or first receives a delivery; a rotation makes a new
 * current secret and lets the old one sign alongside for {@link WEBHOOK_SECRET_OVERLAP_SECONDS}.
 */
export class WebhookSecretsRepository {
  private readonly dialect: PortableSql;

  constructor(
    private readonly db: Db,
    private readonly keyring: Keyring,
  ) {
    this.dialect = portableSql(db);
  }

  /** The tenant's current secret, made on first use (once: two first uses at once make one). */
  async current(tenant: string): Promise<WebhookSecretView> {
    const existing = await this.currentRow(tenant);
    if (existing) return existing;
    await inTenantTransaction(this.db, 'webhook secret', tenant, async (trx) => {
      const again = await trx.selectFrom('webhook_secrets').select('id').where('tenant_id', '=', tenant).where('expires_at', 'is', null).executeTakeFirst();
      if (!again) await trx.insertInto('webhook_secrets').values(this.row(tenant)).execute();
    });
    return (await this.currentRow(tenant))!;
  }

  /** Every secret that signs a delivery now: the current one first, then rotated ones not yet expired. */
  async signing(tenant: string): Promise<string[]> {
    await this.current(tenant);
    const rows = await this.db
      .selectFrom('webhook_secrets')
      .select(['sealed_secret', 'expires_at'])
      .where('tenant_id', '=', tenant)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', this.dialect.now())]))
      .orderBy('created_at', 'desc')
      .execute();
    // The newest current secret first (two first uses at once may each have made one; only the
    // newest is ever shown), then the rotated ones still inside their overlap.
    const current = rows.find((row) => row.expires_at === null);
    const rotated = rows.filter((row) => row.expires_at !== null);
    // A rotated secret the keyring can no longer open (its key retired) signs nothing: rotating
    // away from it is how a tenant leaves it, so it must not fail every delivery of its overlap.
    const stillOpen = rotated.flatMap((row) => {
      try {
        return [this.open(tenant, row.sealed_secret)];
      } catch {
        return [];
      }
    });
    return [...(current ? [this.open(tenant, current.sealed_secret)] : []), ...stillOpen];
  }

  /**
   * Makes a new current secret; the previous one keeps signing until its overlap ends. Rotations
   * of a tenant run one at a time: each retires the current secret the one before it made.
   */
  async rotate(tenant: string): Promise<WebhookSecretView & { previousExpiresAt: Date | null }> {
    // The secret it retires is never opened: a rotation is also the way out for a tenant whose
    // secret was sealed with a key the keyring no longer holds.
    return inTenantTransaction(this.db, 'webhook secret', tenant, async (trx) => {
      await trx
        .updateTable('webhook_secrets')
        .set({ expires_at: this.dialect.secondsFromNow(WEBHOOK_SECRET_OVERLAP_SECONDS) })
        .where('tenant_id', '=', tenant)
        .where('expires_at', 'is', null)
        .execute();
      const row = this.row(tenant);
      await trx.insertInto('webhook_secrets').values(row).execute();
      const made = await trx.selectFrom('webhook_secrets').select('created_at').where('id', '=', row.id).executeTakeFirstOrThrow();
      const previous = await trx
        .selectFrom('webhook_secrets')
        .select('expires_at')
        .where('tenant_id', '=', tenant)
        .where('expires_at', 'is not', null)
        .orderBy('expires_at', 'desc')
        .executeTakeFirst();
      return {
        secret: this.open(tenant, row.sealed_secret),
        createdAt: made.created_at,
        previousExpiresAt: (previous?.expires_at as Date | undefined) ?? null,
      };
    });
  }

  /**
   * Seals again, under the keyring's current key, secrets sealed under an older one (up to
   * `limit` a call), so an old key can leave the keyring once every secret has moved: the purge
   * runs this every ten minutes after a rotation of ACCOUNTS_KEYRING. Secrets no key of the
   * keyring opens are counted, and left for their tenant to rotate.
   */
  async resealUnderCurrentKey(limit = 500): Promise<{ resealed: number; unopenable: number }> {
    // A row or two a tenant: read whole, judged here (a key id may hold "_", a LIKE wildcard).
    const all = await this.db.selectFrom('webhook_secrets').select(['id', 'tenant_id', 'sealed_secret']).execute();
    const rows = all.filter((row) => !row.sealed_secret.startsWith(`v1.${this.keyring.currentKeyId}.`)).slice(0, limit);
    let resealed = 0;
    let unopenable = 0;
    for (const row of rows) {
      let sealed: string;
      try {
        sealed = reencryptSecret(row.sealed_secret, this.keyring, `webhook-secret:${row.tenant_id}`);
      } catch (error) {
        if (!(error instanceof SecretDecryptionError)) throw error;
        unopenable += 1;
        continue;
      }
      const updated = await this.db
        .updateTable('webhook_secrets')
        .set({ sealed_secret: sealed })
        .where('id', '=', row.id)
        .where('sealed_secret', '=', row.sealed_secret)
        .executeTakeFirst();
      resealed += Number(updated.numUpdatedRows);
    }
    return { resealed, unopenable };
  }

  /** Removes secrets whose overlap has ended. */
  async purgeExpired(): Promise<number> {
    const result = await this.db.deleteFrom('webhook_secrets').where('expires_at', '<', this.dialect.now()).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  private row(tenant: string) {
    return {
      id: randomUUID(),
      tenant_id: tenant,
      sealed_secret: encryptSecret(newWebhookSecret(), this.keyring, `webhook-secret:${tenant}`),
      expires_at: null,
    };
  }

  private open(tenant: string, sealed: string): string {
    return decryptSecret(sealed, this.keyring, `webhook-secret:${tenant}`);
  }

  private async currentRow(tenant: string): Promise<WebhookSecretView | undefined> {
    const row = await this.db
      .selectFrom('webhook_secrets')
      .select(['sealed_secret', 'created_at'])
      .where('tenant_id', '=', tenant)
      .where('expires_at', 'is', null)
      .orderBy('created_at', 'desc')
      .executeTakeFirst();
    return row && { secret: this.open(tenant, row.sealed_secret), createdAt: row.created_at };
  }
}

timeQueries(WebhookSecretsRepository, 'webhookSecrets');
