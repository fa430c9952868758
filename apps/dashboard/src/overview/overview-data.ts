import type { Job, Queue } from 'bullmq';
import {
  type BreakerBoard,
  type BreakerReport,
  failureGroupOf,
  type QueueActionRecord,
  type QueueActionsRepository,
  type RedisClient,
  type VideosRepository,
  type VideoStatus,
} from '@clipline/shared';

/** Completed jobs read per queue for the wait and processing percentiles. */
const TIMING_SAMPLE = 100;
/** Failed jobs read per queue to group the recent failures by reason. */
const FAILURE_SAMPLE = 100;
/** Minutes of throughput shown. */
const MINUTES = 60;

export interface QueueOverview {
  name: string;
  paused: boolean;
  counts: { waiting: number; active: number; delayed: number; prioritized: number; failed: number; completed: number; waitingChildren: number };
  /** Per minute over the last hour, oldest first; `minutes[i]` is the start of that minute (epoch seconds). */
  throughput: { minutes: number[]; completed: number[]; failed: number[] };
  /** Milliseconds, from the newest completed jobs; null when none completed. */
  waitMs: { p50: number | null; p95: number | null };
  processingMs: { p50: number | null; p95: number | null };
  oldestWaitingAgeMs: number | null;
  workers: { process: string; connections: number }[];
}

export interface FailureGroup {
  queue: string;
  reason: string;
  count: number;
  lastFailedAt: string | null;
  /** Up to three of the newest failed jobs with this reason: Bull Board shows each at /queue/:queue/:id. */
  jobIds: string[];
}

export interface OverviewSnapshot {
  generatedAt: string;
  queues: QueueOverview[];
  breakers: BreakerReport[];
  /** Null when the database could not be read ({@link database} says so). */
  videos: Record<VideoStatus, number> | null;
  /** `unavailable`: the video counts and the audit could not be read; the queues still show. */
  database: 'ok' | 'unavailable';
  failures: FailureGroup[];
  audit: (Omit<QueueActionRecord, 'createdAt' | 'finishedAt'> & { createdAt: string; finishedAt: string | null })[];
}

export interface OverviewSources {
  queues: readonly Queue[];
  breakers: BreakerBoard;
  videos: VideosRepository;
  audit: QueueActionsRepository;
}

/** The value below which `fraction` of `values` lie (nearest rank); null for no values. */
export function percentile(values: readonly number[], fraction: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1));
  return sorted[rank] ?? null;
}

/** How long completed jobs waited (less any delay they were given) and ran. */
function timings(jobs: readonly Job[]): Pick<QueueOverview, 'waitMs' | 'processingMs'> {
  const waits: number[] = [];
  const runs: number[] = [];
  for (const job of jobs) {
    if (!job?.processedOn) continue;
    waits.push(Math.max(0, job.processedOn - job.timestamp - (job.opts?.delay ?? 0)));
    if (job.finishedOn) runs.push(Math.max(0, job.finishedOn - job.processedOn));
  }
  return {
    waitMs: { p50: percentile(waits, 0.5), p95: percentile(waits, 0.95) },
    processingMs: { p50: percentile(runs, 0.5), p95: percentile(runs, 0.95) },
  };
}

/**
 * BullMQ's metrics, per minute for the last hour, oldest first. BullMQ pushes a minute's count
 * only when a job finishes in a later minute, so the list is anchored at `prevTS` (the last such
 * push): `data[0]` is the minute before it, and the jobs since (`count - prevCount`) belong to
 * the minute of `prevTS` itself. Minutes after it had no finished job.
 */
export function perMinute(
  metrics: { meta: { count: number; prevTS: number; prevCount: number }; data: readonly number[] },
  now: number,
): { minutes: number[]; values: number[] } {
  const byMinute = new Map<number, number>();
  if (metrics.meta.prevTS > 0) {
    const anchor = Math.floor(metrics.meta.prevTS / 60_000);
    byMinute.set(anchor, Math.max(0, metrics.meta.count - metrics.meta.prevCount));
    for (const [index, value] of metrics.data.entries()) byMinute.set(anchor - 1 - index, Number(value) || 0);
  }
  const thisMinute = Math.floor(now / 60_000);
  const minutes: number[] = [];
  const values: number[] = [];
  for (let back = MINUTES - 1; back >= 0; back -= 1) {
    minutes.push((thisMinute - back) * 60);
    values.push(byMinute.get(thisMinute - back) ?? 0);
  }
  return { minutes, values };
}

/** Prioritized jobs read at most, by priority: past this many, the oldest among them is reported. */
const PRIORITIZED_SCAN_LIMIT = 100_000;
/** Entries read per round trip: each a short command, so Redis is never held for long. */
const PRIORITIZED_SLICE = 1000;
/** Jobs put back into the set (counter 0) whose own times are read, at most. */
const PUSHED_BACK_LIMIT = 1000;

/**
 * The creation time of the longest-waiting prioritized job. BullMQ orders the set by priority
 * and, within one, by a counter taken when each job entered it (the score's low 32 bits), so
 * neither end of the set is the oldest job: a job of a low priority waits behind every newer
 * job of a higher one. The lowest counter is the earliest arrival. A job BullMQ put back (a
 * rate limit, a worker shutting down) enters with counter 0 whatever its age, so those are
 * judged by their own creation time. Read in slices, each a short command.
 */
async function oldestPrioritizedStamp(queue: Queue): Promise<number | undefined> {
  // The queues are made on ioredis connections (the shared createRedis).
  const client = (await queue.backend.client) as unknown as RedisClient;
  const key = queue.keys.prioritized!;
  let earliest: { id: string; counter: number } | undefined;
  const pushedBack: string[] = [];
  for (let start = 0; start < PRIORITIZED_SCAN_LIMIT; start += PRIORITIZED_SLICE) {
    const slice = await client.zrange(key, start, start + PRIORITIZED_SLICE - 1, 'WITHSCORES');
    for (let index = 0; index < slice.length; index += 2) {
      const counter = Number(slice[index + 1]) % 2 ** 32;
      const id = slice[index]!;
      if (counter === 0) {
        if (pushedBack.length < PUSHED_BACK_LIMIT) pushedBack.push(id);
      } else if (!earliest || counter < earliest.counter) earliest = { id, counter };
    }
    if (slice.length < PRIORITIZED_SLICE * 2) break;
  }
  const ids = [...(earliest ? [earliest.id] : []), ...pushedBack];
  if (ids.length === 0) return undefined;
  const pipeline = client.pipeline();
  for (const id of ids) pipeline.hmget(queue.toKey(id), 'timestamp', 'delay', 'processedOn');
  const stamps = ((await pipeline.exec()) ?? [])
    .map(([, fields]) => {
      const [timestamp, delay, processedOn] = (fields as (string | null)[]) ?? [];
      return readySince({ timestamp: Number(timestamp), delay: Number(delay ?? 0), processedOn: processedOn ? Number(processedOn) : undefined });
    })
    .filter((stamp) => Number.isFinite(stamp) && stamp > 0);
  return stamps.length ? Math.min(...stamps) : undefined;
}

/**
 * Since when a waiting job has been ready to run: its creation plus its delay, or, for a job that
 * ran before (a retry after its backoff, a run put back to wait for an upstream), the start of
 * that run plus its delay (BullMQ keeps a retry's backoff as its delay). A retried job's creation says nothing of how long it has waited now: notify retries
 * spread over two hours, and a backlog gauge read from creation would alert on a wait of seconds.
 */
function readySince(job: { timestamp: number; delay?: number | undefined; processedOn?: number | undefined }): number {
  // A retry's delay is its backoff, counted from the failed run (which started at processedOn).
  const delay = Number.isFinite(job.delay) ? (job.delay ?? 0) : 0;
  return Math.max(job.timestamp + delay, job.processedOn ? job.processedOn + delay : 0);
}

/**
 * The oldest job waiting: the far end of the wait list (jobs are pushed at the head), its near
 * end, and the earliest arrival among the prioritized jobs; the earliest added of them.
 */
export async function oldestWaitingAge(queue: Queue, now: number): Promise<number | null> {
  const [tail, head, prioritized] = await Promise.all([queue.getJobs(['wait'], -1, -1), queue.getJobs(['wait'], 0, 0), oldestPrioritizedStamp(queue)]);
  const stamps = [...tail, ...head].filter(Boolean).map((job) => readySince(job));
  if (prioritized !== undefined && Number.isFinite(prioritized)) stamps.push(prioritized);
  return stamps.length ? Math.max(0, now - Math.min(...stamps)) : null;
}

/** Workers name their connection `<host>:<pid>` (see the worker runtime): group connections by it. */
function workersByProcess(clients: readonly Record<string, string>[]): QueueOverview['workers'] {
  const counts = new Map<string, number>();
  for (const client of clients) {
    const raw = client.rawname ?? '';
    const marker = raw.indexOf(':w:');
    const process = marker >= 0 ? raw.slice(marker + 3) : client.addr || 'unnamed';
    counts.set(process, (counts.get(process) ?? 0) + 1);
  }
  return [...counts].map(([process, connections]) => ({ process, connections })).sort((a, b) => a.process.localeCompare(b.process));
}

async function queueOverview(queue: Queue, now: number): Promise<{ overview: QueueOverview; failed: Job[] }> {
  const [counts, paused, completedMetrics, failedMetrics, completedJobs, oldest, clients, failed] = await Promise.all([
    queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'failed', 'completed', 'waiting-children'),
    queue.isPaused(),
    queue.getMetrics('completed', 0, MINUTES - 1),
    queue.getMetrics('failed', 0, MINUTES - 1),
    queue.getCompleted(0, TIMING_SAMPLE - 1) as Promise<Job[]>,
    oldestWaitingAge(queue, now),
    queue.getWorkers().catch(() => []),
    queue.getFailed(0, FAILURE_SAMPLE - 1) as Promise<Job[]>,
  ]);
  const completed = perMinute(completedMetrics, now);
  const failedPerMinute = perMinute(failedMetrics, now);
  const overview: QueueOverview = {
    name: queue.name,
    paused,
    counts: {
      waiting: counts.waiting ?? 0,
      active: counts.active ?? 0,
      delayed: counts.delayed ?? 0,
      prioritized: counts.prioritized ?? 0,
      failed: counts.failed ?? 0,
      completed: counts.completed ?? 0,
      waitingChildren: counts['waiting-children'] ?? 0,
    },
    throughput: { minutes: completed.minutes, completed: completed.values, failed: failedPerMinute.values },
    ...timings(completedJobs),
    oldestWaitingAgeMs: oldest,
    workers: workersByProcess(clients as Record<string, string>[]),
  };
  return { overview, failed };
}

function groupFailures(perQueue: { queue: string; failed: Job[] }[]): FailureGroup[] {
  const groups = new Map<string, FailureGroup & { last: number }>();
  for (const { queue, failed } of perQueue)
    for (const job of failed) {
      if (!job) continue;
      const reason = failureGroupOf(job.failedReason);
      const key = `${queue}\u0000${reason}`;
      const group = groups.get(key) ?? { queue, reason, count: 0, lastFailedAt: null, jobIds: [], last: 0 };
      group.count += 1;
      if (group.jobIds.length < 3 && job.id) group.jobIds.push(job.id);
      if ((job.finishedOn ?? 0) > group.last) {
        group.last = job.finishedOn ?? 0;
        group.lastFailedAt = new Date(group.last).toISOString();
      }
      groups.set(key, group);
    }
  return [...groups.values()]
    .sort((a, b) => b.last - a.last || b.count - a.count)
    .slice(0, 30)
    .map(({ last: _last, ...group }) => group);
}

/** Everything the overview shows, read in one pass over Redis and the database. */
export async function readOverview(sources: OverviewSources, now = Date.now()): Promise<OverviewSnapshot> {
  const [perQueue, breakers, videos, audit] = await Promise.all([
    Promise.all(sources.queues.map((queue) => queueOverview(queue, now))),
    sources.breakers.read(now).catch(() => []),
    sources.videos.countByStatus().catch(() => null),
    sources.audit.recent(15).catch(() => null),
  ]);
  return {
    generatedAt: new Date(now).toISOString(),
    queues: perQueue.map((entry) => entry.overview),
    breakers,
    videos,
    database: videos === null || audit === null ? 'unavailable' : 'ok',
    failures: groupFailures(perQueue.map((entry) => ({ queue: entry.overview.name, failed: entry.failed }))),
    audit: (audit ?? []).map((row) => ({ ...row, createdAt: row.createdAt.toISOString(), finishedAt: row.finishedAt?.toISOString() ?? null })),
  };
}
