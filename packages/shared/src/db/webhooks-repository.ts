import { sql } from 'kysely';
import type { Db } from './connection.js';
import { portableSql, type PortableSql } from './portable-sql.js';
import { timeQueries } from './query-timing.js';
import type { WebhookEvent } from './schema.js';

type DeliveryState = 'pending' | 'delivered' | 'failed';

export interface WebhookDelivery {
  id: string;
  videoId: string;
  /** The tenant of the video: its secrets sign the delivery. */
  tenantId: string;
  event: WebhookEvent;
  url: string;
  state: DeliveryState;
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  /** The body first sent, while the delivery is pending; null before its first attempt and once it is settled. */
  body: string | null;
}

export interface WebhookAttempt {
  statusCode: number | null;
  error: string | null;
  durationMs: number;
}

/** The webhook outbox: deliveries owed to submitters and the log of every attempt. */
export class WebhooksRepository {
  private readonly dialect: PortableSql;

  constructor(private readonly db: Db) {
    this.dialect = portableSql(db);
  }

  async find(id: string): Promise<WebhookDelivery | undefined> {
    const row = await this.db.selectFrom('webhook_deliveries').selectAll().where('id', '=', id).executeTakeFirst();
    return (
      row && {
        id: row.id,
        videoId: row.video_id,
        tenantId: row.tenant_id,
        event: row.event,
        url: row.url,
        state: row.state,
        attempts: row.attempts,
        lastStatus: row.last_status,
        lastError: row.last_error,
        body: row.body,
      }
    );
  }

  /**
   * The body every attempt of the delivery sends: `body` when this is the first to keep one, else
   * the one kept before (two runs of one delivery at once send the same message). Undefined when
   * the delivery is no longer pending (another run settled it, and its body went with it).
   */
  async keepBody(id: string, body: string): Promise<string | undefined> {
    await this.db.updateTable('webhook_deliveries').set({ body }).where('id', '=', id).where('state', '=', 'pending').where('body', 'is', null).execute();
    const row = await this.db.selectFrom('webhook_deliveries').select(['body', 'state']).where('id', '=', id).executeTakeFirst();
    return row?.state === 'pending' ? (row.body ?? undefined) : undefined;
  }

  async forVideo(videoId: string): Promise<WebhookDelivery[]> {
    const rows = await this.db.selectFrom('webhook_deliveries').select('id').where('video_id', '=', videoId).orderBy('created_at').execute();
    return (await Promise.all(rows.map((row) => this.find(row.id)))).filter((row): row is WebhookDelivery => row !== undefined);
  }

  /** Pending deliveries not touched for `staleSeconds`: their job was lost or never enqueued. */
  async stalePending(staleSeconds: number, limit = 500): Promise<string[]> {
    const rows = await this.db
      .selectFrom('webhook_deliveries')
      .select('id')
      .where('state', '=', 'pending')
      .where('updated_at', '<', this.dialect.secondsAgo(staleSeconds))
      .orderBy('updated_at')
      .limit(limit)
      .execute();
    return rows.map((row) => row.id);
  }

  async touch(ids: readonly string[]): Promise<void> {
    if (ids.length) await this.db.updateTable('webhook_deliveries').set({ updated_at: this.dialect.now() }).where('id', 'in', ids).execute();
  }

  /**
   * Logs one attempt and moves the delivery on, in one transaction. Only a pending delivery moves:
   * a run that ends after another run of the same job settled it (a job run twice) logs its
   * attempt without undoing what was settled.
   */
  async recordAttempt(id: string, attempt: WebhookAttempt, outcome: 'delivered' | 'retry' | 'failed'): Promise<void> {
    const settled = outcome === 'retry' ? undefined : outcome;
    await this.db.transaction().execute(async (trx) => {
      await trx
        .updateTable('webhook_deliveries')
        .set({
          attempts: sql`attempts + 1`,
          last_status: attempt.statusCode,
          last_error: attempt.error,
          updated_at: this.dialect.now(),
          // delivered_at first: MySQL evaluates assignments in order, so a later one would see the new state.
          ...(settled === 'delivered' ? { delivered_at: sql<Date>`case when state = 'pending' then ${this.dialect.now()} else delivered_at end` } : {}),
          ...(settled ? { state: sql<DeliveryState>`case when state = 'pending' then ${settled} else state end`, body: null } : {}),
        })
        .where('id', '=', id)
        .execute();
      // The update holds the row's lock until commit, so this reads the count it just wrote.
      const { attempts } = await trx.selectFrom('webhook_deliveries').select('attempts').where('id', '=', id).executeTakeFirstOrThrow();
      await trx
        .insertInto('webhook_attempts')
        .values({ delivery_id: id, attempt: attempts, status_code: attempt.statusCode, error: attempt.error, duration_ms: Math.round(attempt.durationMs) })
        .execute();
    });
  }
}

timeQueries(WebhooksRepository, 'webhooks');
