import type { Job, Worker } from 'bullmq';
import { Counter, Histogram, type Registry } from 'prom-client';

/**
 * Job counters and timings of one process, per queue and job name: what Prometheus rates and
 * aggregates across every worker of a deployment (a queue's completed and failed counts kept by
 * BullMQ are capped by retention and cannot be rated).
 *
 * - `clipline_jobs_completed_total{queue,name}`
 * - `clipline_jobs_failed_total{queue,name,final}`: every failed attempt; `final="true"` when no
 *   attempt is left (or the error is permanent), `"false"` when the job will be retried
 * - `clipline_jobs_stalled_total{queue}`: jobs found without a live worker and put back (or failed
 *   past JOB_STALL_LIMIT) by this process's stall check
 * - `clipline_job_wait_seconds{queue,name}`: from when the job could first run (created, plus its
 *   delay) to when a worker started its last attempt
 * - `clipline_job_processing_seconds{queue,name}`: the last attempt, start to finish
 */
interface JobMetrics {
  completed: Counter<'queue' | 'name'>;
  failed: Counter<'queue' | 'name' | 'final'>;
  stalled: Counter<'queue'>;
  wait: Histogram<'queue' | 'name'>;
  processing: Histogram<'queue' | 'name'>;
}

/** Seconds, from a few milliseconds (notifications, no-op steps) to an hour (long renders, outage deferrals). */
const BUCKETS = [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 180, 600, 1800, 3600];

const byRegistry = new WeakMap<Registry, JobMetrics>();

/** The job metrics of `registry`, registered on first use (every worker of a process shares them). */
function jobMetrics(registry: Registry): JobMetrics {
  const existing = byRegistry.get(registry);
  if (existing) return existing;
  const registers = [registry];
  const metrics: JobMetrics = {
    completed: new Counter({ name: 'clipline_jobs_completed_total', help: 'Jobs completed, per queue and job name', labelNames: ['queue', 'name'], registers }),
    failed: new Counter({
      name: 'clipline_jobs_failed_total',
      help: 'Failed job attempts, per queue and job name; final="true" when the job failed for good',
      labelNames: ['queue', 'name', 'final'],
      registers,
    }),
    stalled: new Counter({
      name: 'clipline_jobs_stalled_total',
      help: 'Jobs whose worker was gone, found by this process’s stall check',
      labelNames: ['queue'],
      registers,
    }),
    wait: new Histogram({
      name: 'clipline_job_wait_seconds',
      help: 'Seconds from when a job could first run to when its last attempt started',
      labelNames: ['queue', 'name'],
      buckets: BUCKETS,
      registers,
    }),
    processing: new Histogram({
      name: 'clipline_job_processing_seconds',
      help: 'Seconds a job’s last attempt ran',
      labelNames: ['queue', 'name'],
      buckets: BUCKETS,
      registers,
    }),
  };
  byRegistry.set(registry, metrics);
  return metrics;
}

/** Records the timings of a job that has just finished an attempt. */
function observeTimings(metrics: JobMetrics, queue: string, job: Job): void {
  const labels = { queue, name: job.name };
  const started = job.processedOn;
  if (!started) return;
  const ready = job.timestamp + (job.opts.delay ?? 0);
  if (started >= ready) metrics.wait.observe(labels, (started - ready) / 1000);
  const finished = job.finishedOn ?? Date.now();
  if (finished >= started) metrics.processing.observe(labels, (finished - started) / 1000);
}

/** Counts and times every job `worker` finishes, and every stalled job its stall check finds, in `registry`. */
export function observeJobs(worker: Worker, queue: string, registry: Registry | undefined): void {
  if (!registry) return;
  const metrics = jobMetrics(registry);
  worker.on('completed', (job) => {
    metrics.completed.inc({ queue, name: job.name });
    observeTimings(metrics, queue, job);
  });
  worker.on('failed', (job, error) => {
    if (!job) return;
    const final = error?.name === 'UnrecoverableError' || job.attemptsMade >= (job.opts.attempts ?? 1);
    metrics.failed.inc({ queue, name: job.name, final: String(final) });
    observeTimings(metrics, queue, job);
  });
  worker.on('stalled', () => metrics.stalled.inc({ queue }));
}
