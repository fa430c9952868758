// Where a pipeline run's time went, from its BullMQ jobs' timestamps (used by bench/pipeline.mjs).
//
// Every job carries `timestamp` (added: for a flow's children, when the parent's phase added
// them), `processedOn` (taken by a worker) and `finishedOn`. Per step (job name): the time it
// waited in its queue (processedOn - timestamp) and ran (finishedOn - processedOn). Per video:
// the share of submit-to-completed covered by no running step at all (hand-offs between steps:
// the parent waking up, adding the next phase, and that phase's jobs waiting for a worker).
// Per worker-cpu queue: how many of its slots were busy on average over the whole run.
import { Queue } from 'bullmq';

const round = (value, places = 3) => Math.round(value * 10 ** places) / 10 ** places;

function quantile(values, q) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** Every completed or failed job of the given queues under the prefix, as plain records. */
export async function collectJobs(connection, prefix, queueNames) {
  const jobs = [];
  for (const name of queueNames) {
    const queue = new Queue(name, { connection, prefix });
    try {
      for (const job of await queue.getJobs(['completed', 'failed'], 0, -1)) {
        if (!job?.processedOn || !job.finishedOn) continue;
        const videoId = job.data?.videoId ?? String(job.id).slice(0, 36);
        jobs.push({ queue: name, name: job.name, videoId, added: job.timestamp, started: job.processedOn, finished: job.finishedOn });
      }
    } finally {
      await queue.close();
    }
  }
  return jobs;
}

/** Milliseconds of [from, to] covered by at least one of the intervals. */
function coveredMs(intervals, from, to) {
  const clipped = intervals
    .map(([start, end]) => [Math.max(start, from), Math.min(end, to)])
    .filter(([start, end]) => end > start)
    .sort((a, b) => a[0] - b[0]);
  let total = 0;
  let reach = from;
  for (const [start, end] of clipped) {
    if (end <= reach) continue;
    total += end - Math.max(start, reach);
    reach = end;
  }
  return total;
}

/** Per step name: jobs, mean and p95 queue wait and run, total run seconds. */
function perStep(jobs) {
  const steps = {};
  for (const job of jobs) {
    const key = `${job.queue}/${job.name}`;
    steps[key] ??= { waits: [], runs: [] };
    steps[key].waits.push((job.started - job.added) / 1000);
    steps[key].runs.push((job.finished - job.started) / 1000);
  }
  const mean = (values) => values.reduce((sum, value) => sum + value, 0) / values.length;
  return Object.fromEntries(
    Object.entries(steps).map(([key, { waits, runs }]) => [
      key,
      {
        jobs: runs.length,
        wait_mean_s: round(mean(waits)),
        wait_p95_s: round(quantile(waits, 0.95)),
        run_mean_s: round(mean(runs)),
        run_p95_s: round(quantile(runs, 0.95)),
        run_total_s: round(
          runs.reduce((sum, value) => sum + value, 0),
          2,
        ),
      },
    ]),
  );
}

/**
 * Per video, between its submission and its completion: seconds when some step of it ran, and
 * seconds when none did (hand-offs and queue waits), plus the phase boundaries relative to the
 * submission: ingest, analyze and transcribe done (persist waits for both), persist done, last render done.
 */
function perVideo(jobs, videos) {
  return videos.map((video) => {
    const own = jobs.filter((job) => job.videoId === video.id && job.queue !== 'pipeline');
    const latency = video.completedAt - video.submittedAt;
    const busy = coveredMs(
      own.map((job) => [job.started, job.finished]),
      video.submittedAt,
      video.completedAt,
    );
    const doneOf = (names) => {
      const ends = own.filter((job) => names.includes(job.name)).map((job) => job.finished);
      return ends.length ? round((Math.max(...ends) - video.submittedAt) / 1000, 2) : null;
    };
    return {
      latency_s: round(latency / 1000, 2),
      busy_s: round(busy / 1000, 2),
      idle_s: round((latency - busy) / 1000, 2),
      ingest_done_s: doneOf(['ingest-video']),
      analyze_done_s: doneOf(['analyze-video']),
      transcribe_done_s: doneOf(['transcribe']),
      persist_done_s: doneOf(['persist-analysis']),
      render_done_s: doneOf(['render-clip']),
    };
  });
}

/** Mean slots busy on a queue over [from, to]: the integral of its running jobs, divided by the span. */
function meanBusySlots(jobs, queue, from, to) {
  const ms = jobs.filter((job) => job.queue === queue).reduce((sum, job) => sum + Math.max(0, Math.min(job.finished, to) - Math.max(job.started, from)), 0);
  return round(ms / (to - from), 2);
}

/** The profile of one run: steps, videos, and how busy worker-cpu's slots were. */
export function profile(jobs, videos, { from, to, concurrency }) {
  const videoRows = perVideo(jobs, videos);
  const sum = (key) => videoRows.reduce((total, row) => total + row[key], 0);
  return {
    steps: perStep(jobs),
    videos: videoRows,
    video_busy_share: round(sum('busy_s') / sum('latency_s')),
    cpu_slots: {
      analyze: { concurrency: concurrency.analyze, mean_busy: meanBusySlots(jobs, 'analyze', from, to) },
      render: { concurrency: concurrency.render, mean_busy: meanBusySlots(jobs, 'render', from, to) },
    },
  };
}

export { quantile, round };
