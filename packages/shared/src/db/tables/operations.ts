import type { Timestamp } from './core.js';

/** What an operator did to a queue; `board`: a write through Bull Board's own API, named in `detail`. */
export type QueueActionKind = 'retry-failed' | 'discard-failed' | 'pause' | 'resume' | 'board';

/** The actions the overview and the admin API run themselves. */
export type QueueOperationKind = Exclude<QueueActionKind, 'board'>;

/**
 * How a reason filter picks failed jobs: `contains` (a substring of the failure reason, the
 * admin API's) or `group` (the reason's first line, as the dashboard groups failures, exactly).
 */
export type ReasonMatch = 'contains' | 'group';

/** Who did it: an admin API key (through the producer) or a dashboard account. */
export type QueueActorKind = 'api-key' | 'dashboard';

/**
 * One operator action on a queue, written before it runs and completed once it ran, with the
 * number of jobs it touched.
 */
export interface QueueActionsTable {
  id: string;
  /** The admin key's name (or its configured principal), or the dashboard account's user. */
  actor: string;
  actor_kind: QueueActorKind;
  /** The tenant of the admin key; null for a dashboard account. */
  tenant_id: string | null;
  action: QueueActionKind;
  queue: string;
  /** The failure-reason filter of a retry or discard (a substring), null for all failed jobs. */
  reason_filter: string | null;
  /** How the filter was matched: null a substring of the reason, `group` the reason's first line exactly. */
  reason_match: ReasonMatch | null;
  /** A Bull Board action as asked (`PUT /api/queues/ingest/empty`); null for the others. */
  detail: string | null;
  /** Jobs retried or discarded; 0 for a pause or resume, and until the action finished. */
  affected: number;
  created_at: Timestamp;
  /** When the action finished; null while it runs (or when its process died before it finished). */
  finished_at: Date | null;
  /** Why the action failed part way (Redis away); `affected` says how far it got. */
  error: string | null;
}

export interface OperationTables {
  queue_actions: QueueActionsTable;
}
