/**
 * The queue side of a video: the state of each essential job of its flow, read from Redis. A
 * chaos test compares it with the video's record, so a video whose flow is over in the queues
 * but whose record never settled is reported as such instead of as a time-out.
 */
import { Queue, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { analyzeQueue, ingestQueue, persistQueue, pipelineQueue, VIDEO_STEPS } from '@clipline/shared';
import { waitFor } from '../../helpers/services.js';
import type { ClipLineProcesses } from './clipline-processes.js';

/** The flow's jobs, innermost first; job ids are `<videoId>-<queue>`. */
const FLOW_QUEUES = [ingestQueue, analyzeQueue, persistQueue, pipelineQueue].map((declaration) => declaration.name);
const TERMINAL_VIDEO = ['completed', 'failed', 'cancelled'];
/** Steps that always run; the others call AI providers and are skipped without a key. */
const CORE_STEPS: readonly string[] = ['ingest', 'analyze', 'persist', 'render'];

/** `queue → state`, with the failure reason after a failed state. */
export type FlowState = Record<string, string>;

export interface VideoSettlement {
  id: string;
  /** The video's status in the API once it settled (or was given up on). */
  status: string;
  error: string | null;
  /** `name:status` of each step, in pipeline order. */
  steps: string[];
  flow: FlowState;
}

export class FlowInspector {
  private readonly redis: Redis;
  private readonly queues: Map<string, Queue>;

  constructor(redisUrl: string, prefix: string) {
    this.redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
    this.redis.on('error', () => {});
    this.queues = new Map(FLOW_QUEUES.map((name) => [name, new Queue(name, { connection: this.redis, prefix })]));
    // A Redis the test crashes on purpose: the inspector just asks again later.
    for (const queue of this.queues.values()) queue.on('error', () => {});
  }

  /** The video's job in one of the flow's queues (`ingest`, `analyze`, `persist`, `pipeline`). */
  async job(queueName: string, videoId: string): Promise<Job | undefined> {
    const queue = this.queues.get(queueName);
    if (!queue) throw new Error(`"${queueName}" is not a queue of the video flow (${FLOW_QUEUES.join(', ')})`);
    return queue.getJob(`${videoId}-${queueName}`);
  }

  async flowOf(videoId: string): Promise<FlowState> {
    const entries = await Promise.all(
      FLOW_QUEUES.map(async (name) => {
        const job = await this.job(name, videoId);
        const state = job ? await job.getState() : 'missing';
        return [name, state === 'failed' ? `failed: ${job?.failedReason}` : state] as const;
      }),
    );
    return Object.fromEntries(entries);
  }

  /**
   * Waits until the video's record is terminal, or until its flow has been over in the queues
   * (parent job completed or failed) for `graceMs` without the record following: a video that
   * nothing will ever settle. Resolves with what was seen either way.
   */
  async settle(processes: ClipLineProcesses, videoId: string, timeoutMs: number, graceMs = 10_000): Promise<VideoSettlement> {
    let flowOverSince: number | undefined;
    let seen: VideoSettlement | undefined;
    try {
      return await waitFor(
        async () => {
          const answer = await processes.api('GET', `/v1/videos/${videoId}`);
          // A refused poll (the key's rate limit, say) says nothing of the video: keep what was seen.
          if (answer.status !== 200) throw new Error(`GET /v1/videos/${videoId} answered ${answer.status}`);
          const video = answer.body;
          const flow = await this.flowOf(videoId);
          const steps = ((video.steps ?? []) as { name: string; status: string }[]).map((step) => `${step.name}:${step.status}`);
          seen = { id: videoId, status: video.status, error: video.error, steps, flow };
          const parent = flow[pipelineQueue.name] ?? 'missing';
          if (parent === 'completed' || parent.startsWith('failed')) flowOverSince ??= Date.now();
          const abandoned = flowOverSince !== undefined && Date.now() - flowOverSince >= graceMs;
          return TERMINAL_VIDEO.includes(video.status) || abandoned ? seen : undefined;
        },
        timeoutMs,
        `video ${videoId} to settle`,
      );
    } catch (error) {
      // A video that never settles is the failure to explain: say where its record and its jobs stood.
      const waitingOn = await this.unfinishedChildren(videoId).catch((cause: unknown) => [`(not read: ${String(cause)})`]);
      throw new Error(
        `${(error as Error).message}; last seen: ${JSON.stringify(seen ?? 'nothing')}; the parent waits on: ${waitingOn.join(', ') || 'nothing'}`,
      );
    }
  }

  /** The parent job's children that have not finished, as `queue:id state`. */
  private async unfinishedChildren(videoId: string): Promise<string[]> {
    const parent = await this.job(pipelineQueue.name, videoId);
    if (!parent) return [];
    const { unprocessed = [] } = await parent.getDependencies({ unprocessed: { count: 100 } });
    return Promise.all(
      unprocessed.map(async (key) => {
        // Keys read `<prefix>:<queue>:<id>`; the prefix may itself hold colons.
        const [id, queueName] = key.split(':').reverse();
        const queue = new Queue(queueName!, { connection: this.redis, prefix: parent.queueQualifiedName.split(':').slice(0, -1).join(':') });
        const child = await queue.getJob(id!);
        const state = child ? await child.getState() : 'missing';
        await queue.close();
        return `${queueName}:${id} ${state}`;
      }),
    );
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((queue) => queue.close()));
    this.redis.disconnect();
  }
}

/** How a video that came through settles: completed, every job of its flow completed. */
export function completedSettlement(id: string, aiSteps: 'completed' | 'skipped'): VideoSettlement {
  return {
    id,
    status: 'completed',
    error: null,
    steps: VIDEO_STEPS.map((step) => `${step}:${CORE_STEPS.includes(step) ? 'completed' : aiSteps}`),
    flow: Object.fromEntries(FLOW_QUEUES.map((name) => [name, 'completed'])),
  };
}
