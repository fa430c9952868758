import { randomUUID } from 'node:crypto';
import type { RedisClient } from '../redis.js';
import type { VideoOptions, VideoPriority } from '../db/schema.js';
import type { ActiveVideoLimitError, VideosRepository } from '../db/videos-repository.js';
import { FlowEnqueuer, type Chain } from '../jobs/flow-enqueuer.js';
import type { QueueContext } from '../jobs/queue-registry.js';
import type { VideoSignals } from '../jobs/video-signals.js';
import { syncQueue } from '../queues/sync.js';
import { withRetries } from '../retries.js';
import { parseSource } from '../sources.js';
import { ANY_TENANT, DEFAULT_TENANT, type TenantScope } from '../tenancy.js';
import { chainSteps, parentFlowStep, VIDEO_STEPS, videoSideJobId } from './video-flow.js';

export interface VideoSubmission {
  source: string;
  title?: string | null;
  options?: VideoOptions;
  callbackUrl?: string | null;
  /** @defaultValue 'normal' */
  priority?: VideoPriority;
  /** Seconds before processing may start. */
  delaySeconds?: number;
  /** The same video on YouTube: its metadata is fetched now and kept fresh by the sync schedule. */
  youtubeId?: string | null;
}

export interface SubmitContext {
  /** Who submits (an API key id): fair share is computed per submitter. */
  submittedBy?: string;
  /** The tenant the videos belong to. @defaultValue {@link DEFAULT_TENANT} */
  tenant?: string;
  /**
   * Unfinished videos the tenant may have, these included: past it nothing is written and
   * {@link ActiveVideoLimitError} is thrown. Concurrent submissions of a tenant are counted one
   * after another. @defaultValue no limit
   */
  maxActiveVideos?: number;
}

export class InvalidSubmissionError extends Error {
  override name = 'InvalidSubmissionError';

  constructor(
    /** What is wrong, without the field's name. */
    readonly reason: string,
    /** The field: `source`, or `videos.<n>.source` in a batch. */
    readonly path: string,
  ) {
    super(path.startsWith('videos.') ? `${path}: ${reason}` : reason);
  }
}

/**
 * Refuses a submission no worker could take, naming its field (`where` prefixes it in a batch:
 * `videos.3.`): a source that is no file or http(s) URL, a YouTube page, a NUL in the title.
 */
export function checkSubmission(submission: Pick<VideoSubmission, 'source' | 'title'>, where = ''): void {
  const parsed = parseSource(submission.source);
  if (!parsed.ok) throw new InvalidSubmissionError(parsed.reason, `${where}source`);
  if (submission.title?.includes('\u0000')) throw new InvalidSubmissionError('title contains a NUL character', `${where}title`);
  // A host may end in the root's dot (`www.youtube.com.`): the same host.
  if (parsed.source.kind === 'http' && /(^|\.)(youtube\.com|youtu\.be)\.?$/i.test(parsed.source.url.hostname)) {
    throw new InvalidSubmissionError('YouTube pages are not media files: submit the video file as source and its YouTube id as youtubeId', `${where}source`);
  }
}

export type CancelOutcome = 'cancelled' | 'already-finished' | 'not-found';

/** Telling a cancelled video's running steps, and removing its waiting ones: about a second of tries each. */
const CANCEL_RETRIES = { attempts: 3, firstDelayMs: 200 };

/** BullMQ priority (1 = first) at the head of each class; fair-share penalties stay inside the class. */
const PRIORITY_BASE: Record<VideoPriority, number> = { high: 1, normal: 21, low: 41 };
const MAX_FAIR_SHARE_PENALTY = 19;

export interface FairShareSettings {
  /** Submissions per key per minute before its jobs start yielding to lighter submitters. @defaultValue 60 */
  quotaPerMinute?: number;
}

/**
 * The typed producer of video pipelines, used by the HTTP API and by any Node service that
 * enqueues directly. It decides job ids, priority, delay and fair share in one place. The
 * database rows are written first, then the flows; if enqueuing fails the rows are removed
 * again, so a submission either fully exists or not at all.
 */
export class VideoPipelineProducer {
  private readonly flows: FlowEnqueuer;
  private readonly redis: RedisClient;
  private readonly prefix: string;

  constructor(
    context: QueueContext,
    private readonly videos: VideosRepository,
    private readonly signals?: VideoSignals,
    private readonly fairShare: FairShareSettings = {},
  ) {
    this.flows = new FlowEnqueuer(context);
    this.redis = context.connection;
    this.prefix = context.prefix;
  }

  async submit(submission: VideoSubmission, context: SubmitContext = {}, id: string = randomUUID()): Promise<{ id: string }> {
    const [result] = await this.submitMany([{ submission, id }], context);
    return result!;
  }

  /** Many videos in one database transaction and one Redis round trip. */
  async submitMany(items: readonly { submission: VideoSubmission; id?: string }[], context: SubmitContext = {}): Promise<{ id: string }[]> {
    const prepared = items.map(({ submission, id }, index) => {
      checkSubmission(submission, items.length > 1 ? `videos.${index}.` : '');
      return { submission, id: id ?? randomUUID() };
    });
    const penalty = await this.fairSharePenalty(context.submittedBy, prepared.length);
    await this.videos.createMany(
      prepared.map(({ submission, id }) => ({
        id,
        source: submission.source,
        title: submission.title ?? null,
        steps: VIDEO_STEPS,
        options: submission.options ?? {},
        callbackUrl: submission.callbackUrl ?? null,
        priority: submission.priority ?? 'normal',
        submittedBy: context.submittedBy ?? null,
        youtubeId: submission.youtubeId ?? null,
        tenantId: context.tenant ?? DEFAULT_TENANT,
      })),
      context.maxActiveVideos === undefined ? undefined : { tenant: context.tenant ?? DEFAULT_TENANT, limit: context.maxActiveVideos },
    );
    try {
      // Metadata refreshes ride in the same round trip, as flows of a single job.
      const refreshes = prepared.filter(({ submission }) => submission.youtubeId).map(({ id }) => metadataRefresh(id));
      await this.flows.addChains([...prepared.map(({ submission, id }) => videoChain(id, submission, penalty)), ...refreshes]);
    } catch (error) {
      // The rows go with the enqueue that failed. A database blip at that moment too is waited out
      // in the background (about half a minute): rows left without jobs would be failed by the
      // reconciler minutes later, with a webhook, for videos whose submitter was told no.
      const ids = prepared.map((item) => item.id);
      await this.videos.remove(...ids).catch(() => {
        void withRetries(() => this.videos.remove(...ids), { attempts: 6, firstDelayMs: 500, maxDelayMs: 8000 }).catch(() => {});
      });
      throw error;
    }
    return prepared.map(({ id }) => ({ id }));
  }

  /**
   * Fair share: a submitter's recent volume (this minute and the last) pushes its new jobs back
   * within their priority class, so one heavy submitter cannot starve the others.
   */
  private async fairSharePenalty(submitter: string | undefined, count: number): Promise<number> {
    if (!submitter) return 0;
    const quota = this.fairShare.quotaPerMinute ?? 60;
    const minute = Math.floor(Date.now() / 60_000);
    const key = (m: number) => `${this.prefix}:fair-share:${submitter}:${m}`;
    const [[, current], , [, previous]] = (await this.redis
      .multi()
      .incrby(key(minute), count)
      .expire(key(minute), 180)
      .get(key(minute - 1))
      .exec()) as [[unknown, number], [unknown, unknown], [unknown, string | null]];
    const recent = Number(current) + Number(previous ?? 0) / 2;
    return Math.min(MAX_FAIR_SHARE_PENALTY, Math.floor(recent / quota));
  }

  /**
   * Cancels a video: the record becomes `cancelled` first (so no step starts work for it), then
   * running steps are told to stop (killing their ffmpeg) and waiting ones are removed. Once the
   * record says so the video is cancelled, whatever comes next: the two after it are tried a few
   * times each, and should Redis stay away, a running step ends its own work and every later
   * one, reading the record, does none.
   */
  async cancel(id: string, scope: TenantScope = ANY_TENANT): Promise<CancelOutcome> {
    const status = await this.videos.status(id, scope);
    if (!status) return 'not-found';
    if (!(await this.videos.cancel(id))) return 'already-finished';
    const retried = (work: () => Promise<unknown>) => withRetries(work, CANCEL_RETRIES).catch(() => {});
    await Promise.all([retried(async () => this.signals?.cancelled(id)), retried(() => this.flows.removeChain(parentFlowStep(id)))]);
    return 'cancelled';
  }

  close(): Promise<void> {
    return this.flows.close();
  }
}

/**
 * A video's flow: the `chain` steps of the pipeline table, in table order, under the parent job.
 * Every job of it shares the video's priority (its class plus the submitter's fair-share
 * penalty); a delay holds back the first step.
 */
export function videoChain(id: string, submission: VideoSubmission, penalty = 0): Chain {
  return {
    parent: parentFlowStep(id),
    steps: chainSteps({ videoId: id, source: submission.source, ...(submission.options ? { options: submission.options } : {}) }),
    options: {
      priority: PRIORITY_BASE[submission.priority ?? 'normal'] + penalty,
      ...(submission.delaySeconds ? { delayMs: Math.round(submission.delaySeconds * 1000) } : {}),
    },
  };
}

/** A linked YouTube video's metadata refresh: a flow of a single job, riding in the submission's round trip. */
function metadataRefresh(id: string): Chain {
  return { parent: { declaration: syncQueue, jobName: 'refresh-metadata', data: { videoId: id }, jobId: videoSideJobId(id, 'sync') }, steps: [] };
}
