import { randomUUID } from 'node:crypto';
import type { Db } from './connection.js';
import { portableSql, type PortableSql } from './portable-sql.js';
import { timeQueries } from './query-timing.js';
import { storableText } from '../text.js';
import type { QueueActionKind, QueueActorKind, ReasonMatch } from './tables/operations.js';

export interface QueueActionActor {
  name: string;
  kind: QueueActorKind;
  tenant?: string | null;
}

export interface QueueActionRecord {
  id: string;
  actor: string;
  actorKind: QueueActorKind;
  tenant: string | null;
  action: QueueActionKind;
  queue: string;
  reasonFilter: string | null;
  /** How the filter was matched (`contains` for actions recorded before this was kept). */
  reasonMatch: ReasonMatch;
  /** A Bull Board action as asked (`PUT /api/queues/ingest/empty`); null for the others. */
  detail: string | null;
  affected: number;
  createdAt: Date;
  /** Null while the action runs, or when its process stopped before it finished. */
  finishedAt: Date | null;
  error: string | null;
}

/** The audit of operators' queue actions (who, what, which queue, which reason, when, how many). */
export class QueueActionsRepository {
  private readonly dialect: PortableSql;

  constructor(private readonly db: Db) {
    this.dialect = portableSql(db);
  }

  /** Writes an action about to run (nothing touched yet, not finished); returns its id for {@link finish}. */
  async start(entry: {
    actor: QueueActionActor;
    action: QueueActionKind;
    queue: string;
    reasonFilter: string | null;
    reasonMatch?: ReasonMatch;
    detail?: string;
  }): Promise<string> {
    const id = randomUUID();
    await this.db
      .insertInto('queue_actions')
      .values({
        id,
        actor: entry.actor.name.slice(0, 200),
        actor_kind: entry.actor.kind,
        tenant_id: entry.actor.tenant ?? null,
        action: entry.action,
        queue: entry.queue,
        // A filter copied from a stored failure reason may hold a NUL, which PostgreSQL refuses in
        // text: the audit keeps it visible as U+FFFD, so the action is never left unrecorded.
        reason_filter: entry.reasonFilter === null ? null : storableText(entry.reasonFilter),
        reason_match: entry.reasonFilter !== null && entry.reasonMatch === 'group' ? 'group' : null,
        detail: entry.detail === undefined ? null : storableText(entry.detail.slice(0, 500)),
        affected: 0,
        finished_at: null,
        error: null,
      })
      .execute();
    return id;
  }

  /** Records how an action started with {@link start} ended: the jobs it touched, and its failure if it failed. */
  async finish(id: string, outcome: { affected: number; error?: string | undefined }): Promise<void> {
    await this.db
      .updateTable('queue_actions')
      .set({
        affected: outcome.affected,
        finished_at: this.dialect.now(),
        error: outcome.error === undefined ? null : storableText(outcome.error.slice(0, 1000)),
      })
      .where('id', '=', id)
      .execute();
  }

  /** The newest actions first. */
  async recent(limit = 20): Promise<QueueActionRecord[]> {
    const rows = await this.db.selectFrom('queue_actions').selectAll().orderBy('created_at', 'desc').orderBy('id').limit(limit).execute();
    return rows.map((row) => ({
      id: row.id,
      actor: row.actor,
      actorKind: row.actor_kind,
      tenant: row.tenant_id,
      action: row.action,
      queue: row.queue,
      reasonFilter: row.reason_filter,
      reasonMatch: row.reason_match ?? 'contains',
      detail: row.detail,
      affected: Number(row.affected),
      createdAt: row.created_at,
      finishedAt: row.finished_at,
      error: row.error,
    }));
  }
}

timeQueries(QueueActionsRepository, 'queueActions');
