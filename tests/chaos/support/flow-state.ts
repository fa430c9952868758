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
    return waitFor(
      async () => {
        const video = (await processes.api('GET', `/v1/videos/${videoId}`)).body;
        const flow = await this.flowOf(videoId);
        const parent = flow[pipelineQueue.name] ?? 'missing';
        if (parent === 'completed' || parent.startsWith('failed')) flowOverSince ??= Date.now();
        const abandoned = flowOverSince !== undefined && Date.now() - flowOverSince >= graceMs;
        if (!TERMINAL_VIDEO.includes(video.status) && !abandoned) return undefined;
        const steps = (video.steps as { name: string; status: string }[]).map((step) => `${step.name}:${step.status}`);
        return { id: videoId, status: video.status, error: video.error, steps, flow };
      },
      timeoutMs,
      `video ${videoId} to settle`,
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
