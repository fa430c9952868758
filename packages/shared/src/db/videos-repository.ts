import { randomUUID } from 'node:crypto';
import { sql, type Insertable, type Selectable, type Transaction } from 'kysely';
import type { Db } from './connection.js';
import { ignoreDuplicates, portableSql, type PortableSql } from './portable-sql.js';
import { timeQueries } from './query-timing.js';
import { inTenantTransaction } from './tenant-lock.js';
import type { Database, StepStatus, VideoOptions, VideoPriority, VideoStatus } from './schema.js';
import { ANY_TENANT, DEFAULT_TENANT, type TenantScope } from '../tenancy.js';
import { relativeToStorage } from '../storage.js';
import { storableText } from '../text.js';

import type { Scene, VideoMetadata } from '../pipeline/analysis-result.js';

export interface VideoStepView {
  name: string;
  status: StepStatus;
  reason: string | null;
  attempts: number;
  updatedAt: string;
}

/** A video as the API shows it. */
export interface VideoView {
  id: string;
  /** The tenant that owns the video. */
  tenant: string;
  status: VideoStatus;
  progress: number;
  /** Bumped on every change; the event id of the video's live stream. */
  version: number;
  priority: VideoPriority;
  options: VideoOptions;
  callbackUrl: string | null;
  youtubeId: string | null;
  title: string | null;
  source: string;
  error: string | null;
  createdAt: string;
  updatedAt: string;
  completedAt: string | null;
  metadata: VideoMetadata | null;
  scenes: Scene[];
  steps: VideoStepView[];
}

export interface NewVideoRecord {
  id: string;
  source: string;
  title: string | null;
  steps: readonly string[];
  options?: VideoOptions;
  callbackUrl?: string | null;
  priority?: VideoPriority;
  submittedBy?: string | null;
  youtubeId?: string | null;
  /** The owning tenant. @defaultValue {@link DEFAULT_TENANT} */
  tenantId?: string;
}

/** Fair use: at most `limit` unfinished videos of `tenant`, counted with the new ones. */
export interface ActiveVideoCap {
  tenant: string;
  limit: number;
}

/** Thrown by {@link VideosRepository.createMany} when the videos would take their tenant past its cap; nothing is written. */
export class ActiveVideoLimitError extends Error {
  override name = 'ActiveVideoLimitError';
  constructor(
    readonly active: number,
    readonly limit: number,
    readonly adding: number,
  ) {
    const batch = adding > 1 ? `a batch of ${adding} does not fit; ` : '';
    super(`this tenant has ${active} unfinished videos and may have at most ${limit} (MAX_ACTIVE_VIDEOS_PER_TENANT); ${batch}submit more once some finish`);
  }
}

export interface VideoListQuery {
  /** Whose videos: one tenant's, or every tenant's. */
  scope: TenantScope;
  status?: VideoStatus;
  submittedBy?: string;
  /** Page size, 1-100. */
  limit: number;
  /** Opaque position from a previous page's `nextCursor`. */
  cursor?: string;
}

export interface RepositoryHooks {
  /** Called after any change to a video (status, progress, steps, results): live streams listen. */
  onChange?: (videoId: string) => void;
  /**
   * Called after a video finished (completed, failed, cancelled) with the ids of the webhook
   * deliveries that the same transaction put in the outbox, so they can be sent at once.
   */
  onFinished?: (videoId: string, deliveryIds: string[]) => Promise<void> | void;
  /** Called after a step failed a video, before `onFinished`: its running optional steps are stopped. */
  onFailed?: (videoId: string) => void;
}

export interface VideosRepositoryOptions extends RepositoryHooks {
  /**
   * The order a video's steps are shown in (the pipeline's table order, wired by the app); steps
   * not listed come last. @defaultValue none: steps come ordered by name
   */
  stepOrder?: readonly string[];
  /**
   * The folder stored files live in (`STORAGE_DIR`): reasons written to a video or a step name
   * its files relative to it, since API clients read them. @defaultValue none: reasons as given
   */
  storageDir?: string;
}

const WEBHOOK_EVENTS = { completed: 'video.completed', failed: 'video.failed', cancelled: 'video.cancelled' } as const;

type Executor = Transaction<Database>;

export class InvalidCursorError extends Error {
  override name = 'InvalidCursorError';
}

/**
 * A cursor holds the last video of a page and its place in the order: its id and its creation
 * time as the database wrote it (exact, see `PortableSql#timeText`). The next page starts after
 * that place whether or not the video still exists: a list-and-purge loop deletes the very rows
 * its cursors name. Cursors of earlier releases (`v1:`, the id alone) are read from the row.
 */
function encodeCursor(id: string, position: string): string {
  return Buffer.from(`v2:${id}:${position}`).toString('base64url');
}

const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';

function decodeCursor(cursor: string, positionPattern: RegExp): { id: string; position?: string } {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const current = new RegExp(`^v2:(${UUID}):(.+)$`).exec(text);
  if (current?.[1] && current[2] && positionPattern.test(current[2])) return { id: current[1], position: current[2] };
  const earlier = new RegExp(`^v1:(${UUID})$`).exec(text);
  if (earlier?.[1]) return { id: earlier[1] };
  throw new InvalidCursorError('cursor is not one this API returned');
}

export interface JobEvent {
  videoId: string | null;
  queue: string;
  jobName: string;
  jobId: string;
  step: string | null;
  status: string;
  attempt: number;
  reason: string | null;
}

const TERMINAL: readonly VideoStatus[] = ['completed', 'failed', 'cancelled'];
/** Videos one INSERT writes (20 parameters each); steps go four times as many to a statement (4 each). */
const ROWS_PER_INSERT = 500;

type VideoStepRow = Selectable<Database['video_steps']>;

/** Columns of a scene's row: the bind parameters it takes in a multi-row INSERT. */
const SCENE_COLUMNS = 4;

/** Reads and writes of videos, their steps, scenes and job events. Every write is idempotent. */
export class VideosRepository {
  private readonly dialect: PortableSql;

  private readonly stepRank: (name: string) => number;
  /** A reason as clients may read it: without the storage folder's path. */
  private readonly clientReason: (reason: string) => string;

  constructor(
    private readonly db: Db,
    private readonly hooks: VideosRepositoryOptions = {},
  ) {
    this.dialect = portableSql(db);
    const order = hooks.stepOrder ?? [];
    this.stepRank = (name) => (order.includes(name) ? order.indexOf(name) : order.length);
    const root = hooks.storageDir;
    this.clientReason = root ? (reason) => storableText(relativeToStorage(reason, root)) : storableText;
  }

  /**
   * Puts the webhook of a finished video in the outbox, inside the caller's transaction, and
   * returns the ids of its pending deliveries (none when the video has no callback).
   */
  private async enqueueWebhook(trx: Executor, id: string, status: keyof typeof WEBHOOK_EVENTS): Promise<string[]> {
    const event = WEBHOOK_EVENTS[status];
    await ignoreDuplicates(
      trx
        .insertInto('webhook_deliveries')
        .columns(['id', 'video_id', 'event', 'url', 'tenant_id'])
        .expression((eb) =>
          eb
            .selectFrom('videos')
            .select([this.dialect.uuid(randomUUID()).as('id'), 'id as video_id', sql.lit(event).as('event'), 'callback_url as url', 'tenant_id'])
            .where('id', '=', id)
            .where('callback_url', 'is not', null),
        ),
      this.dialect.engine,
      ['video_id', 'event'],
    ).execute();
    const rows = await trx
      .selectFrom('webhook_deliveries')
      .select('id')
      .where('video_id', '=', id)
      .where('event', '=', event)
      .where('state', '=', 'pending')
      .execute();
    return rows.map((row) => row.id);
  }

  private async finished(id: string, deliveryIds: string[]): Promise<void> {
    this.changed(id);
    await this.hooks.onFinished?.(id, deliveryIds);
  }

  private changed(id: string): void {
    try {
      this.hooks.onChange?.(id);
    } catch {
      // A listener's failure must not fail the write that already happened.
    }
  }

  /** Inserts the video and its pending steps in one transaction; a repeated id is a no-op. */
  async create(video: NewVideoRecord): Promise<void> {
    await this.createMany([video]);
  }

  /**
   * Inserts many videos and their steps in one transaction: a statement per
   * {@link ROWS_PER_INSERT} videos and per four times as many steps (two statements for up to 250
   * videos of eight steps), so each statement's parameters stay well under SQLite's 32,766 and
   * the 65,535 of PostgreSQL and MySQL, whatever the count.
   */
  async createMany(videos: readonly NewVideoRecord[], cap?: ActiveVideoCap): Promise<void> {
    if (videos.length === 0) return;
    // With a cap, the tenant's unfinished videos are counted inside the transaction that writes
    // the new ones, one capped submission of the tenant at a time: without it, forty submissions
    // at once each counted the others' videos as not there yet.
    const write = async (trx: Executor) => {
      if (cap) {
        const active = await this.countUnfinished(cap.tenant, trx);
        if (active + videos.length > cap.limit) throw new ActiveVideoLimitError(active, cap.limit, videos.length);
      }
      for (let start = 0; start < videos.length; start += ROWS_PER_INSERT) {
        await this.insertVideos(trx, videos.slice(start, start + ROWS_PER_INSERT));
      }
      const steps = videos.flatMap((video) => video.steps.map((step) => ({ video_id: video.id, step, status: 'pending' as const, reason: null })));
      for (let start = 0; start < steps.length; start += ROWS_PER_INSERT * 4) {
        const part = steps.slice(start, start + ROWS_PER_INSERT * 4);
        await ignoreDuplicates(trx.insertInto('video_steps').values(part), this.dialect.engine, ['video_id', 'step']).execute();
      }
    };
    if (cap) await inTenantTransaction(this.db, 'submission', cap.tenant, write);
    else await this.db.transaction().execute(write);
  }

  private async insertVideos(trx: Executor, videos: readonly NewVideoRecord[]): Promise<void> {
    await ignoreDuplicates(
      trx.insertInto('videos').values(
        videos.map((video) => ({
          id: video.id,
          status: 'queued' as const,
          source: video.source,
          title: video.title,
          error: null,
          storage_key: null,
          size_bytes: null,
          duration_seconds: null,
          width: null,
          height: null,
          fps: null,
          has_audio: null,
          video_codec: null,
          completed_at: null,
          options: JSON.stringify(video.options ?? {}),
          callback_url: video.callbackUrl ?? null,
          priority: video.priority ?? 'normal',
          submitted_by: video.submittedBy ?? null,
          youtube_id: video.youtubeId ?? null,
          tenant_id: video.tenantId ?? DEFAULT_TENANT,
        })),
      ),
      this.dialect.engine,
      ['id'],
    ).execute();
  }

  /** Which of `ids` have a video row (any tenant, any status). */
  async existing(ids: readonly string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const rows = await this.db.selectFrom('videos').select('id').where('id', 'in', ids).execute();
    return new Set(rows.map((row) => row.id));
  }

  /** Removes videos whose jobs could not be enqueued, so no half-submitted row stays behind. */
  async remove(...ids: string[]): Promise<void> {
    if (ids.length) await this.db.deleteFrom('videos').where('id', 'in', ids).execute();
  }

  /** Newest first, filtered; pages are stable under concurrent inserts (keyset on created_at, id). */
  async list(query: VideoListQuery): Promise<{ items: VideoView[]; nextCursor: string | null }> {
    let select = this.db.selectFrom('videos').select(['id', this.dialect.timeText('created_at').as('position')]);
    if (query.scope.kind === 'tenant') select = select.where('tenant_id', '=', query.scope.tenant);
    if (query.status) select = select.where('status', '=', query.status);
    if (query.submittedBy) select = select.where('submitted_by', '=', query.submittedBy);
    if (query.cursor) {
      const after = decodeCursor(query.cursor, this.dialect.timeTextPattern);
      if (after.position !== undefined) {
        select = select.where(sql<boolean>`(created_at, id) < (${this.dialect.timeAt(after.position)}, ${this.dialect.uuid(after.id)})`);
      } else {
        let anchorQuery = this.db.selectFrom('videos').select('id').where('id', '=', after.id);
        // A cursor naming another tenant's video is as unknown as one naming a deleted video.
        if (query.scope.kind === 'tenant') anchorQuery = anchorQuery.where('tenant_id', '=', query.scope.tenant);
        const anchor = await anchorQuery.executeTakeFirst();
        if (!anchor) throw new InvalidCursorError('cursor points at a video that no longer exists; start again without it');
        select = select.where(sql<boolean>`(created_at, id) < (select v.created_at, v.id from videos v where v.id = ${after.id})`);
      }
    }
    const rows = await select
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(query.limit + 1)
      .execute();
    const page = rows.slice(0, query.limit);
    const last = page.at(-1);
    return {
      items: await this.views(page.map((row) => row.id)),
      nextCursor: rows.length > query.limit && last ? encodeCursor(last.id, String(last.position)) : null,
    };
  }

  /**
   * Cancels a video that has not finished: it becomes `cancelled` and its unfinished steps too.
   * Returns false when the video had already finished (or does not exist).
   */
  async cancel(id: string): Promise<boolean> {
    const deliveries = await this.db.transaction().execute(async (trx) => {
      const result = await trx
        .updateTable('videos')
        .set({ status: 'cancelled', error: 'cancelled on request', updated_at: this.dialect.now(), version: sql`version + 1` })
        .where('id', '=', id)
        .where('status', 'not in', TERMINAL)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) === 0) return undefined;
      await trx
        .updateTable('video_steps')
        .set({ status: 'cancelled', reason: 'cancelled on request', updated_at: this.dialect.now() })
        .where('video_id', '=', id)
        .where('status', 'in', ['pending', 'active'])
        .execute();
      return this.enqueueWebhook(trx, id, 'cancelled');
    });
    if (!deliveries) return false;
    await this.finished(id, deliveries);
    return true;
  }

  /**
   * Unfinished videos untouched for a while, in id order from after `afterId`: the reconciler
   * checks their jobs are still alive, a page a run, so a backlog of live ones older than a lost
   * one does not keep it from being looked at.
   */
  async unfinishedSince(olderThanSeconds: number, limit: number, afterId?: string): Promise<string[]> {
    let query = this.db
      .selectFrom('videos')
      .select('id')
      .where('status', 'in', ['queued', 'processing'])
      .where('updated_at', '<', this.dialect.secondsAgo(olderThanSeconds));
    if (afterId !== undefined) query = query.where('id', '>', afterId);
    const rows = await query.orderBy('id').limit(limit).execute();
    return rows.map((row) => row.id);
  }

  /** The video's status, when it exists in `scope`. */
  async status(id: string, scope: TenantScope = ANY_TENANT): Promise<VideoStatus | undefined> {
    let query = this.db.selectFrom('videos').select('status').where('id', '=', id);
    if (scope.kind === 'tenant') query = query.where('tenant_id', '=', scope.tenant);
    const row = await query.executeTakeFirst();
    return row?.status;
  }

  /** The video as the API shows it, when it exists in `scope`. */
  async find(id: string, scope: TenantScope = ANY_TENANT): Promise<VideoView | undefined> {
    const [view] = await this.views([id], scope);
    return view;
  }

  /** Unfinished videos of a tenant: the fair-use cap counts them. */
  async countUnfinished(tenant: string, db: Db = this.db): Promise<number> {
    const row = await db
      .selectFrom('videos')
      .select((eb) => eb.fn.countAll<number | string | bigint>().as('count'))
      .where('tenant_id', '=', tenant)
      .where('status', 'in', ['queued', 'processing'])
      .executeTakeFirstOrThrow();
    return Number(row.count);
  }

  /** Videos of every tenant per status (the dashboard's overview); a status with none is 0. */
  async countByStatus(): Promise<Record<VideoStatus, number>> {
    const rows = await this.db
      .selectFrom('videos')
      .select((eb) => ['status', eb.fn.countAll<number | string | bigint>().as('count')])
      .groupBy('status')
      .execute();
    const counts: Record<VideoStatus, number> = { queued: 0, processing: 0, completed: 0, failed: 0, cancelled: 0 };
    for (const row of rows) counts[row.status] = Number(row.count);
    return counts;
  }

  /** Views of many videos in three queries whatever their number, in the order of `ids`. */
  private async views(ids: readonly string[], scope: TenantScope = ANY_TENANT): Promise<VideoView[]> {
    if (ids.length === 0) return [];
    let videoQuery = this.db.selectFrom('videos').selectAll().where('id', 'in', ids);
    if (scope.kind === 'tenant') videoQuery = videoQuery.where('tenant_id', '=', scope.tenant);
    // Scenes and steps only of the caller's videos: reading another tenant's (and dropping them)
    // would make its video slower to answer 404 than a missing one.
    const ownIds = scope.kind === 'tenant' ? this.db.selectFrom('videos').select('id').where('id', 'in', ids).where('tenant_id', '=', scope.tenant) : ids;
    const [videos, scenes, stepRows] = await Promise.all([
      videoQuery.execute(),
      this.db
        .selectFrom('scenes')
        .select(['video_id', 'start_seconds', 'end_seconds'])
        .where('video_id', 'in', ownIds)
        .orderBy('video_id')
        .orderBy('scene_index')
        .execute(),
      this.db.selectFrom('video_steps').selectAll().where('video_id', 'in', ownIds).execute(),
    ]);
    const steps = await this.stepsAfterFinish(videos, stepRows);
    const byVideo = new Map(ids.map((id) => [id, { scenes: [] as Scene[], steps: [] as VideoStepView[] }]));
    for (const scene of scenes) byVideo.get(scene.video_id)?.scenes.push({ startSeconds: scene.start_seconds, endSeconds: scene.end_seconds });
    for (const step of steps) {
      byVideo.get(step.video_id)?.steps.push({
        name: step.step,
        status: step.status,
        reason: step.reason,
        attempts: step.attempts,
        updatedAt: step.updated_at.toISOString(),
      });
    }
    const rows = new Map(videos.map((video) => [video.id, video]));
    return ids.flatMap((id) => {
      const video = rows.get(id);
      const related = byVideo.get(id);
      if (!video || !related) return [];
      return [
        toVideoView(
          video,
          related.scenes,
          related.steps.sort((x, y) => this.stepRank(x.name) - this.stepRank(y.name) || x.name.localeCompare(y.name)),
        ),
      ];
    });
  }

  /**
   * The three reads of `views` run side by side, so the steps can come from before the
   * transaction that finished a video (failed, cancelled) and the video from after it: the view
   * would show a finished video with a step still active. A finished video whose steps read
   * unfinished has its steps read again; that read starts after the finish was committed.
   */
  private async stepsAfterFinish(videos: readonly { id: string; status: VideoStatus }[], steps: VideoStepRow[]): Promise<VideoStepRow[]> {
    const finished = new Set(videos.filter((video) => TERMINAL.includes(video.status)).map((video) => video.id));
    const stale = new Set(
      steps.filter((step) => finished.has(step.video_id) && (step.status === 'active' || step.status === 'pending')).map((step) => step.video_id),
    );
    if (stale.size === 0) return steps;
    const again = await this.db
      .selectFrom('video_steps')
      .selectAll()
      .where('video_id', 'in', [...stale])
      .execute();
    return [...steps.filter((step) => !stale.has(step.video_id)), ...again];
  }

  /**
   * Moves a video to a new status. A finished video (completed, failed, cancelled) never moves
   * again, so a late retry cannot resurrect a cancelled or failed video.
   */
  async setStatus(id: string, status: VideoStatus, fields: { error?: string | null; progress?: number } = {}): Promise<boolean> {
    const terminal = TERMINAL.includes(status);
    const outcome = await this.db.transaction().execute(async (trx) => {
      const result = await trx
        .updateTable('videos')
        .set({
          status,
          updated_at: this.dialect.now(),
          version: sql`version + 1`,
          ...(fields.error !== undefined ? { error: fields.error } : {}),
          ...(fields.progress !== undefined ? { progress: fields.progress } : {}),
          ...(status === 'completed' ? { completed_at: this.dialect.now(), progress: 100 } : {}),
        })
        .where('id', '=', id)
        .where('status', 'not in', TERMINAL)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) === 0) return undefined;
      return terminal ? this.enqueueWebhook(trx, id, status as keyof typeof WEBHOOK_EVENTS) : [];
    });
    if (!outcome) return false;
    if (terminal) await this.finished(id, outcome);
    else this.changed(id);
    return true;
  }

  /** Raises progress (never lowers it) of a video that is still running. */
  async raiseProgress(id: string, progress: number): Promise<void> {
    const value = Math.max(0, Math.min(99, Math.round(progress)));
    const result = await this.db
      .updateTable('videos')
      .set({ progress: value, updated_at: this.dialect.now(), version: sql`version + 1` })
      .where('id', '=', id)
      .where('status', 'not in', TERMINAL)
      .where('progress', '<', value)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) > 0) this.changed(id);
  }

  /**
   * Fails a step still pending or active, and only such a step: one whose job failed for good
   * without settling it (its worker died on it until the stall check gave up). A step already
   * completed, skipped, failed or cancelled stays as it is.
   */
  async failUnsettledStep(videoId: string, step: string, reason: string): Promise<void> {
    const result = await this.db
      .updateTable('video_steps')
      .set({ status: 'failed', reason: this.clientReason(reason), updated_at: this.dialect.now() })
      .where('video_id', '=', videoId)
      .where('step', '=', step)
      .where('status', 'in', ['pending', 'active'])
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) > 0) await this.bumpVersion(videoId);
  }

  async setStep(videoId: string, step: string, status: StepStatus, fields: { reason?: string | null; attempts?: number } = {}) {
    await this.db
      .updateTable('video_steps')
      .set({
        status,
        reason: fields.reason ? this.clientReason(fields.reason) : null,
        updated_at: this.dialect.now(),
        ...(fields.attempts !== undefined ? { attempts: fields.attempts } : {}),
      })
      .where('video_id', '=', videoId)
      .where('step', '=', step)
      .where('status', '!=', 'cancelled')
      .execute();
    await this.bumpVersion(videoId);
  }

  /**
   * Marks a step completed and stores its `completed` job event in one transaction, so that a
   * connection lost between the two cannot leave a completion without its event: when the
   * transaction fails, neither is stored and the caller's job runs again. A job whose completion
   * was committed although its connection broke before the answer (it runs again, and completes
   * again) keeps its one event.
   */
  async completeStep(event: Omit<JobEvent, 'status' | 'reason'> & { videoId: string; step: string }): Promise<void> {
    const bumped = await this.db.transaction().execute(async (trx) => {
      // Purged meanwhile: nothing to record, and no event left behind without its video.
      if (!(await this.lockVideo(trx, event.videoId))) return false;
      await trx
        .updateTable('video_steps')
        .set({ status: 'completed', reason: null, updated_at: this.dialect.now(), attempts: event.attempt })
        .where('video_id', '=', event.videoId)
        .where('step', '=', event.step)
        .where('status', '!=', 'cancelled')
        .execute();
      const recorded = await trx
        .selectFrom('job_events')
        .select('id')
        .where('video_id', '=', event.videoId)
        .where('job_id', '=', event.jobId)
        .where('status', '=', 'completed')
        .executeTakeFirst();
      if (!recorded)
        await trx
          .insertInto('job_events')
          .values(jobEventRow({ ...event, status: 'completed', reason: null }))
          .execute();
      return this.versionBumped(trx, event.videoId);
    });
    if (bumped) this.changed(event.videoId);
  }

  /**
   * Takes the video's row first in a transaction that writes it and its steps or events, as
   * `cancel` does by updating it first: transactions that lock the same rows in the same order
   * cannot deadlock, and a purge (which locks the row before deleting) cannot leave behind an
   * event written while it ran. False when the video does not exist. SQLite, whose write
   * transactions run one at a time, needs no row lock.
   */
  private async lockVideo(trx: Executor, id: string): Promise<boolean> {
    const query = trx.selectFrom('videos').select('id').where('id', '=', id);
    return (await (this.dialect.engine === 'sqlite' ? query : query.forUpdate()).executeTakeFirst()) !== undefined;
  }

  private async bumpVersion(id: string): Promise<void> {
    if (await this.versionBumped(this.db, id)) this.changed(id);
  }

  /** A finished video keeps its last version: a client holding the final event is done. */
  private async versionBumped(db: Db, id: string): Promise<boolean> {
    const result = await db
      .updateTable('videos')
      .set({ version: sql`version + 1`, updated_at: this.dialect.now() })
      .where('id', '=', id)
      .where('status', 'not in', TERMINAL)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  /**
   * Marks a step failed for good: the video becomes failed with the reason, and steps that
   * never ran are marked cancelled, all in one transaction. So are other steps still running
   * (an optional step beside the failed one), which the `onFailed` hook's signal stops: their
   * record no longer changes, and the failure's event shows the video as it stays.
   */
  async failVideo(id: string, step: string, givenReason: string): Promise<void> {
    const reason = this.clientReason(givenReason);
    const deliveries = await this.db.transaction().execute(async (trx) => {
      if (!(await this.lockVideo(trx, id))) return undefined;
      // The video first: one that already finished (completed, cancelled, failed by another
      // step) keeps its steps as they were recorded, a late failure changes nothing.
      const result = await trx
        .updateTable('videos')
        .set({ status: 'failed', error: reason, updated_at: this.dialect.now(), version: sql`version + 1` })
        .where('id', '=', id)
        .where('status', 'not in', TERMINAL)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) === 0) return undefined;
      await trx
        .updateTable('video_steps')
        .set({ status: 'failed', reason, updated_at: this.dialect.now() })
        .where('video_id', '=', id)
        .where('step', '=', step)
        .where('status', '!=', 'cancelled')
        .execute();
      await trx
        .updateTable('video_steps')
        .set({ status: 'cancelled', reason: `not run: ${step} failed`, updated_at: this.dialect.now() })
        .where('video_id', '=', id)
        .where('status', '=', 'pending')
        .execute();
      await trx
        .updateTable('video_steps')
        .set({ status: 'cancelled', reason: `stopped: ${step} failed`, updated_at: this.dialect.now() })
        .where('video_id', '=', id)
        .where('step', '!=', step)
        .where('status', '=', 'active')
        .execute();
      return this.enqueueWebhook(trx, id, 'failed');
    });
    if (deliveries) {
      try {
        this.hooks.onFailed?.(id);
      } catch {
        // A hint: the optional steps then finish as they would have.
      }
      await this.finished(id, deliveries);
    } else this.changed(id);
  }

  async setSource(id: string, fields: { storageKey: string; sizeBytes: number }): Promise<void> {
    await this.db
      .updateTable('videos')
      .set({ storage_key: fields.storageKey, size_bytes: fields.sizeBytes, updated_at: this.dialect.now() })
      .where('id', '=', id)
      .execute();
  }

  /**
   * Forgets the stored source of a finished video and returns its key, for the caller to remove
   * the file next. The row stops naming the file before the file goes, so nothing later reads a
   * source that is gone (a crash in between leaves an unnamed file, removed with the video's
   * directory). Null when the video is unfinished, unknown or has no source recorded, and for
   * all but one of concurrent callers. Neither `updated_at` nor `version` moves: the video's
   * finish time and its last event stay what they were.
   */
  async releaseSource(id: string): Promise<string | null> {
    const row = await this.db.selectFrom('videos').select(['status', 'storage_key']).where('id', '=', id).executeTakeFirst();
    if (!row?.storage_key || !TERMINAL.includes(row.status)) return null;
    const result = await this.db
      .updateTable('videos')
      .set({ storage_key: null })
      .where('id', '=', id)
      .where('storage_key', '=', row.storage_key)
      .where('status', 'in', TERMINAL)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0 ? row.storage_key : null;
  }

  /**
   * Finished videos (completed, failed, cancelled) whose finish lies more than `olderThanSeconds`
   * in the past, oldest first. A video that did not complete has no `completed_at`; the last
   * change of its row (the failure or cancellation) counts instead.
   */
  async finishedBefore(olderThanSeconds: number, limit: number): Promise<string[]> {
    const finishedAt = sql<Date>`coalesce(completed_at, updated_at)`;
    const rows = await this.db
      .selectFrom('videos')
      .select('id')
      .where('status', 'in', TERMINAL)
      .where(finishedAt, '<', this.dialect.secondsAgo(olderThanSeconds))
      .orderBy(finishedAt)
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map((row) => row.id);
  }

  /** Finished videos that still name a stored source and were last changed more than `olderThanSeconds` ago. */
  async finishedWithSource(olderThanSeconds: number, limit: number): Promise<string[]> {
    const rows = await this.db
      .selectFrom('videos')
      .select('id')
      .where('status', 'in', TERMINAL)
      .where('storage_key', 'is not', null)
      .where('updated_at', '<', this.dialect.secondsAgo(olderThanSeconds))
      .orderBy('updated_at')
      .limit(limit)
      .execute();
    return rows.map((row) => row.id);
  }

  /**
   * Deletes the finished videos among `ids` in one transaction: their rows, what the foreign keys
   * cascade to (steps, scenes, frame metrics, loudness, analyses, clips, transcripts, clip extras,
   * external metadata, webhook deliveries and attempts) and their job events, which have no
   * foreign key. Unfinished and unknown ids are left alone. Returns the ids whose rows are gone.
   */
  async deleteFinished(ids: readonly string[]): Promise<string[]> {
    if (ids.length === 0) return [];
    return this.db.transaction().execute(async (trx) => {
      // The rows are locked before their events go: an event being written waits, or waits for us.
      const query = trx.selectFrom('videos').select('id').where('id', 'in', ids).where('status', 'in', TERMINAL).orderBy('id');
      const rows = await (this.dialect.engine === 'sqlite' ? query : query.forUpdate()).execute();
      const finished = rows.map((row) => row.id);
      if (finished.length === 0) return [];
      await trx.deleteFrom('job_events').where('video_id', 'in', finished).execute();
      await trx.deleteFrom('videos').where('id', 'in', finished).where('status', 'in', TERMINAL).execute();
      return finished;
    });
  }

  /**
   * Stores what analysis found. Scenes are replaced as a whole inside one transaction, so a
   * retried write leaves exactly one copy and a failed one leaves the previous state.
   */
  async saveAnalysis(id: string, metadata: VideoMetadata, scenes: readonly Scene[]): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const updated = await trx
        .updateTable('videos')
        .set({
          duration_seconds: metadata.durationSeconds,
          width: metadata.width,
          height: metadata.height,
          fps: metadata.fps,
          has_audio: metadata.hasAudio,
          size_bytes: metadata.sizeBytes,
          video_codec: metadata.videoCodec,
          updated_at: this.dialect.now(),
          version: sql`version + 1`,
        })
        .where('id', '=', id)
        // A video cancelled meanwhile keeps its last version (its client holds the final event) and gets no scenes.
        .where('status', 'not in', TERMINAL)
        .executeTakeFirst();
      if (Number(updated.numUpdatedRows) === 0) return;
      await trx.deleteFrom('scenes').where('video_id', '=', id).execute();
      // In statements under the engine's bind-parameter limit: a long, fast-cut video has thousands of scenes.
      const perStatement = Math.floor(this.dialect.maxParameters / SCENE_COLUMNS);
      for (let from = 0; from < scenes.length; from += perStatement) {
        await trx
          .insertInto('scenes')
          .values(
            scenes.slice(from, from + perStatement).map((scene, offset) => ({
              video_id: id,
              scene_index: from + offset,
              start_seconds: scene.startSeconds,
              end_seconds: scene.endSeconds,
            })),
          )
          .execute();
      }
    });
    this.changed(id);
  }

  /** Stores a job event; one of a video purged meanwhile is dropped, not left without its video. */
  async recordJobEvent(event: JobEvent): Promise<void> {
    const { videoId } = event;
    if (videoId === null) {
      await this.db.insertInto('job_events').values(jobEventRow(event)).execute();
      return;
    }
    await this.db.transaction().execute(async (trx) => {
      if (await this.lockVideo(trx, videoId)) await trx.insertInto('job_events').values(jobEventRow(event)).execute();
    });
  }

  async ping(): Promise<void> {
    await sql`select 1`.execute(this.db);
  }
}

function jobEventRow(event: JobEvent): Insertable<Database['job_events']> {
  return {
    video_id: event.videoId,
    queue: event.queue,
    job_name: event.jobName,
    job_id: event.jobId,
    step: event.step,
    status: event.status,
    attempt: event.attempt,
    reason: event.reason === null ? null : storableText(event.reason),
  };
}

/** A row of `videos` with its scenes and steps, as the API shows it. */
function toVideoView(video: Selectable<Database['videos']>, scenes: Scene[], steps: VideoStepView[]): VideoView {
  return {
    id: video.id,
    tenant: video.tenant_id,
    status: video.status,
    progress: video.progress,
    version: video.version,
    priority: video.priority,
    options: video.options,
    callbackUrl: video.callback_url,
    youtubeId: video.youtube_id,
    title: video.title,
    source: video.source,
    error: video.error,
    createdAt: video.created_at.toISOString(),
    updatedAt: video.updated_at.toISOString(),
    completedAt: video.completed_at?.toISOString() ?? null,
    metadata:
      video.duration_seconds === null
        ? null
        : {
            durationSeconds: video.duration_seconds,
            width: video.width ?? 0,
            height: video.height ?? 0,
            fps: video.fps ?? 0,
            hasAudio: video.has_audio ?? false,
            sizeBytes: video.size_bytes ?? 0,
            videoCodec: video.video_codec,
          },
    scenes,
    steps,
  };
}

// `changed` and `finished` call the listeners, which are not queries.
timeQueries(VideosRepository, 'videos', ['changed', 'finished']);
