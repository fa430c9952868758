import type { Job, Worker } from 'bullmq';
import { Counter, type Registry } from 'prom-client';

/**
 * Job counters and timings of one process, per queue and job name: what Prometheus rates and
 * aggregates across every worker of a deployment (a queue's completed and failed counts kept by
 * BullMQ are capped by retention and cannot be rated).
 *
 * - `clipline_jobs_completed_total{queue,name}`
 * - `clipline_jobs_failed_total{queue,name,final}`: every failed attempt; `final="true"` when no
 *   attempt is left (or the error is permanent), `"false"` when the job will be retried
 * - `clipline_jobs_cancelled_total{queue,name}`: jobs stopped because their work was cancelled (a
 *   video cancelled through the API, or one whose failure abandoned its optional steps): asked
 *   for, not failures, so they stay out of the failure ratio
 * - `clipline_jobs_stalled_total{queue}`: jobs found without a live worker and put back (or failed
 *   past JOB_STALL_LIMIT) by this process's stall check
 * - `clipline_job_wait_seconds{queue,name}`: from when the job could first run (created, plus its
 *   delay) to when a worker started its last attempt
 * - `clipline_job_processing_seconds{queue,name}`: the last attempt, start to finish
 *
 * Every finished job updates the first four series, so they are kept in plain numbers per
 * (queue, job name) and turned into samples only when the registry is read: prom-client's own
 * counters and histograms check, sort and hash the labels of every update, which cost a short
 * job more than the rest of the worker runtime did.
 */

/** Seconds, from a few milliseconds (notifications, no-op steps) to an hour (long renders, outage deferrals). */
const BUCKETS = [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 180, 600, 1800, 3600];

/** A histogram's observations: a count per bucket (not cumulative), the sum and the count. */
class Timings {
  readonly buckets = new Float64Array(BUCKETS.length);
  sum = 0;
  count = 0;

  observe(seconds: number): void {
    let bucket = 0;
    while (bucket < BUCKETS.length && seconds > BUCKETS[bucket]!) bucket++;
    if (bucket < BUCKETS.length) this.buckets[bucket]! += 1;
    this.sum += seconds;
    this.count += 1;
  }
}

/** What one (queue, job name) has recorded. */
class JobSeries {
  completed = 0;
  failedFinal = 0;
  failedRetried = 0;
  cancelled = 0;
  readonly wait = new Timings();
  readonly processing = new Timings();

  constructor(readonly labels: { queue: string; name: string }) {}
}

/** A sample as prom-client's registry formats it. */
interface Sample {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

/**
 * A metric whose samples are made from the series when the registry is read: the shape
 * prom-client's `Registry` asks of what it holds (a name, help, type and `get()`).
 */
class SeriesMetric {
  readonly aggregator = 'sum';

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'histogram',
    private readonly store: JobSeriesStore,
    private readonly samples: (series: JobSeries, name: string) => Sample[],
  ) {}

  async get(): Promise<{ name: string; help: string; type: string; values: Sample[]; aggregator: string }> {
    const values = this.store.all().flatMap((series) => this.samples(series, this.name));
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  reset(): void {
    this.store.reset();
  }
}

/** A histogram's samples: cumulative buckets, `+Inf`, sum and count. */
function histogramSamples(timings: Timings, labels: JobSeries['labels'], name: string): Sample[] {
  const samples: Sample[] = [];
  let cumulative = 0;
  BUCKETS.forEach((bound, index) => {
    cumulative += timings.buckets[index]!;
    samples.push({ value: cumulative, labels: { le: bound, ...labels }, metricName: `${name}_bucket` });
  });
  samples.push({ value: timings.count, labels: { le: '+Inf', ...labels }, metricName: `${name}_bucket` });
  samples.push({ value: timings.sum, labels, metricName: `${name}_sum` });
  samples.push({ value: timings.count, labels, metricName: `${name}_count` });
  return samples;
}

/** The series of one registry, by queue then job name. */
class JobSeriesStore {
  private readonly byQueue = new Map<string, Map<string, JobSeries>>();

  series(queue: string, name: string): JobSeries {
    let names = this.byQueue.get(queue);
    if (!names) {
      names = new Map();
      this.byQueue.set(queue, names);
    }
    let series = names.get(name);
    if (!series) {
      series = new JobSeries({ queue, name });
      names.set(name, series);
    }
    return series;
  }

  all(): JobSeries[] {
    return [...this.byQueue.values()].flatMap((names) => [...names.values()]);
  }

  reset(): void {
    this.byQueue.clear();
  }
}

interface JobMetrics {
  store: JobSeriesStore;
  stalled: Counter<'queue'>;
}

const byRegistry = new WeakMap<Registry, JobMetrics>();

/** The job metrics of `registry`, registered on first use (every worker of a process shares them). */
function jobMetrics(registry: Registry): JobMetrics {
  const existing = byRegistry.get(registry);
  if (existing) return existing;
  const store = new JobSeriesStore();
  const metrics: SeriesMetric[] = [
    new SeriesMetric('clipline_jobs_completed_total', 'Jobs completed, per queue and job name', 'counter', store, (series) =>
      series.completed ? [{ value: series.completed, labels: series.labels }] : [],
    ),
    new SeriesMetric(
      'clipline_jobs_failed_total',
      'Failed job attempts, per queue and job name; final="true" when the job failed for good',
      'counter',
      store,
      (series) => [
        ...(series.failedFinal ? [{ value: series.failedFinal, labels: { ...series.labels, final: 'true' } }] : []),
        ...(series.failedRetried ? [{ value: series.failedRetried, labels: { ...series.labels, final: 'false' } }] : []),
      ],
    ),
    new SeriesMetric('clipline_jobs_cancelled_total', 'Jobs stopped because their work was cancelled, per queue and job name', 'counter', store, (series) =>
      series.cancelled ? [{ value: series.cancelled, labels: series.labels }] : [],
    ),
    new SeriesMetric(
      'clipline_job_wait_seconds',
      'Seconds from when a job could first run to when its last attempt started',
      'histogram',
      store,
      (series, name) => (series.wait.count ? histogramSamples(series.wait, series.labels, name) : []),
    ),
    new SeriesMetric('clipline_job_processing_seconds', 'Seconds a job’s last attempt ran', 'histogram', store, (series, name) =>
      series.processing.count ? histogramSamples(series.processing, series.labels, name) : [],
    ),
  ];
  // The registry reads any object of this shape; prom-client's types only name its own classes.
  for (const metric of metrics) registry.registerMetric(metric as unknown as Counter);
  const stalled = new Counter({
    name: 'clipline_jobs_stalled_total',
    help: 'Jobs whose worker was gone, found by this process’s stall check',
    labelNames: ['queue'],
    registers: [registry],
  });
  const created = { store, stalled };
  byRegistry.set(registry, created);
  return created;
}

/** Records the timings of a job that has just finished an attempt. */
function observeTimings(series: JobSeries, job: Job): void {
  const started = job.processedOn;
  if (!started) return;
  const ready = job.timestamp + (job.opts.delay ?? 0);
  if (started >= ready) series.wait.observe((started - ready) / 1000);
  const finished = job.finishedOn ?? Date.now();
  if (finished >= started) series.processing.observe((finished - started) / 1000);
}

/** Counts and times every job `worker` finishes, and every stalled job its stall check finds, in `registry`. */
export function observeJobs(worker: Worker, queue: string, registry: Registry | undefined): void {
  if (!registry) return;
  const { store, stalled } = jobMetrics(registry);
  worker.on('completed', (job) => {
    const series = store.series(queue, job.name);
    series.completed += 1;
    observeTimings(series, job);
  });
  worker.on('failed', (job, error) => {
    if (!job) return;
    const series = store.series(queue, job.name);
    const final = error?.name === 'UnrecoverableError' || job.attemptsMade >= (job.opts.attempts ?? 1);
    if ((error as { cancelled?: unknown } | undefined)?.cancelled === true) series.cancelled += 1;
    else if (final) series.failedFinal += 1;
    else series.failedRetried += 1;
    observeTimings(series, job);
  });
  worker.on('stalled', () => stalled.inc({ queue }));
}
