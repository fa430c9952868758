import { randomBytes, randomUUID } from 'node:crypto';
import { decryptSecret, encryptSecret, type Keyring } from '../crypto/index.js';
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
    return [...(current ? [current] : []), ...rotated].map((row) => this.open(tenant, row.sealed_secret));
  }

  /**
   * Makes a new current secret; the previous one keeps signing until its overlap ends. Rotations
   * of a tenant run one at a time: each retires the current secret the one before it made.
   */
  async rotate(tenant: string): Promise<WebhookSecretView & { previousExpiresAt: Date | null }> {
    await this.current(tenant);
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
