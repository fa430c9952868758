/**
 * Chaos at scale: 40 small videos and 1,000 public jobs (`sync/refresh-metadata`, each a YouTube
 * call through the simulator at 0.2-1.5 s) go through 3 worker-io and 2 worker-cpu processes while
 * a random worker is SIGKILLed every few seconds and started again, and the Redis holding the
 * queues (AOF, appendfsync always) is SIGKILLed once and restarted. Submissions keep coming the
 * whole time, each retried with its Idempotency-Key until accepted.
 *
 * Afterwards every effect must be there exactly once: every video completed with its scenes,
 * frames, clips and audit events once (expectExactlyOnceEffects) and exactly its clip files on
 * disk; one webhook delivery per video, every id the receiver got is a delivery's and no video
 * under two ids (repeats of an id are what a receiver deduplicates); one `public_jobs` row per
 * accepted job and nothing else, every one completed with a fetch, and each video's metadata
 * stored after its last request. The counts are printed at the end.
 *
 * A job whose worker is killed under it goes back to the queue when its lock expires, up to
 * JOB_STALL_LIMIT times (default 3; BullMQ's own default of 1 failed about 2 % of the public jobs
 * at this crash rate, with attempts left, though every step is idempotent).
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { jest } from '@jest/globals';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { syncQueue } from '@clipline/shared';
import { createUpstreamSimulator, type UpstreamSimulator } from '../../infra/upstream-sim/src/index.js';
import type { GeneratedVideo } from '../helpers/media.js';
import { createTestEnvironment, waitFor, type TestEnvironment } from '../helpers/services.js';
import { type AcceptedSubmission, paced, postUntilAccepted } from './support/accepted-submissions.js';
import { ClipLineProcesses } from './support/clipline-processes.js';
import { CrashLoop } from './support/crash-loop.js';
import { FlowInspector } from './support/flow-state.js';
import { PrivateRedis } from './support/redis-server.js';
import { expectExactlyOnceEffects } from './support/stored-outcome.js';
import { createTeardown } from './support/teardown.js';
import { SHORT_CLIPS } from './support/video-batch.js';
import { generateCopies } from './support/video-copies.js';
import { FlakyWebhookReceiver } from './support/webhook-receiver.js';
import { clipFileTally, type PublicJobRequest, publicJobTally, webhookTally } from './support/workload-effects.js';

jest.setTimeout(720_000);

const VIDEOS = Number(process.env.CHAOS_VIDEOS ?? 40);
const PUBLIC_JOBS = Number(process.env.CHAOS_PUBLIC_JOBS ?? 1000);
const VIDEOS_PER_SECOND = 4;
const PUBLIC_JOBS_PER_SECOND = 15;
/** Crashes go on at least this long after the load starts, and until every submission is accepted. */
const CHAOS_MS = 90_000;
/** When Redis is killed, counted from the start of the load, and for how long it stays down. */
const REDIS_CRASH_AT_MS = 30_000;
const REDIS_DOWN_MS = 2000;
/**
 * A guard, not a goal: on an idle 2-core machine everything settles within about 2 minutes of the
 * last crash; other work on the machine slows rendering a lot, and a stalled job waits 30-60 s.
 */
const SETTLE_TIMEOUT_MS = 420_000;
const SEED = Number(process.env.CHAOS_SEED ?? 20_261_202);
const IO_WORKERS = ['worker-io-a', 'worker-io-b', 'worker-io-c'] as const;
const CPU_WORKERS = ['worker-cpu-a', 'worker-cpu-b'] as const;

const teardown = createTeardown('chaos-many-workers');
let redis: PrivateRedis;
let env: TestEnvironment;
let simulator: UpstreamSimulator;
let receiver: FlakyWebhookReceiver;
let processes: ClipLineProcesses;
let flows: FlowInspector;
let syncJobs: Queue;

beforeAll(async () => {
  redis = await PrivateRedis.start({ appendfsync: 'always' });
  teardown.register('redis-server', () => redis.destroy());
  env = await createTestEnvironment({ REDIS_URL: redis.url, LOG_LEVEL: 'warn' });
  teardown.register('test environment', () => env.cleanup());
  // YouTube only: the AI steps stay skipped, so the CPU goes to the videos and the crashes.
  simulator = await createUpstreamSimulator({
    seed: SEED,
    config: { endpoints: { 'youtube.videos.list': { latency: { kind: 'uniform', minMs: 200, maxMs: 1500 } } } },
  });
  teardown.register('upstream simulator', () => simulator.close());
  receiver = await FlakyWebhookReceiver.start([]);
  teardown.register('webhook receiver', () => receiver.close());
  flows = new FlowInspector(redis.url, env.config.queuePrefix);
  teardown.register('flow inspector', () => flows.close());
  const connection = new Redis(redis.url, { maxRetriesPerRequest: null });
  connection.on('error', () => {});
  syncJobs = new Queue(syncQueue.name, { connection, prefix: env.config.queuePrefix });
  syncJobs.on('error', () => {});
  teardown.register('sync queue', async () => {
    await syncJobs.close();
    connection.disconnect();
  });
  processes = await ClipLineProcesses.create({
    ...env.env,
    CPU_POOL_THREADS: '1',
    YOUTUBE_API_KEY: 'sim-key',
    YOUTUBE_BASE_URL: simulator.url,
    YOUTUBE_RATE_LIMIT_PER_SECOND: '1000',
    API_RATE_LIMIT_PER_MINUTE: '0',
  });
  teardown.register('clipline processes', () => processes.killAll());
  // Runs first: the clean-up deletes the test's keys from this Redis, so it must be up again.
  teardown.register('redis-server up for the clean-up', async () => {
    if (!redis.running) await redis.launch();
  });
  await processes.start('producer');
  for (const instance of IO_WORKERS) await processes.start('worker-io', instance);
  for (const instance of CPU_WORKERS) await processes.start('worker-cpu', instance);
  progress('producer, 3 worker-io and 2 worker-cpu running');
});

afterAll(async () => {
  expect(await teardown.shutdown('tests finished')).toBe(0);
});

const youtubeIdOf = (index: number) => `chaos${String(index).padStart(6, '0')}`;
const fileStartedAt = Date.now();
/** A line on stdout as the run goes, so a slow phase shows where the time went. */
const progress = (message: string) => process.stdout.write(`[many-workers +${Math.round((Date.now() - fileStartedAt) / 1000)} s] ${message}\n`);

interface Submitted {
  videos: AcceptedSubmission[];
  publicJobs: PublicJobRequest[];
  refusals: string[];
}

/** Videos at VIDEOS_PER_SECOND and public jobs at PUBLIC_JOBS_PER_SECOND, side by side; each public job names a video already accepted. */
async function submitWorkload(videos: readonly GeneratedVideo[]): Promise<Submitted> {
  const accepted: AcceptedSubmission[] = [];
  const submitVideo = async (index: number) => {
    const body = {
      source: videos[index]!.path,
      title: `chaos ${index}`,
      options: SHORT_CLIPS,
      youtubeId: youtubeIdOf(index),
      callbackUrl: `${receiver.baseUrl}/hooks/${index}`,
    };
    const submission = await postUntilAccepted(processes.producerUrl, '/v1/videos', body, randomUUID());
    accepted.push(submission);
    return submission;
  };
  const submitPublicJob = async (index: number): Promise<PublicJobRequest & { refusals: string[] }> => {
    const videoId = accepted[(index * 7919) % accepted.length]!.id;
    const submission = await postUntilAccepted(processes.producerUrl, '/v1/jobs/sync/refresh-metadata', { videoId }, randomUUID());
    return { id: submission.id, videoId, sentAt: submission.sentAt, refusals: submission.refusals };
  };
  const videoSubmissions = paced(videos.length, VIDEOS_PER_SECOND, submitVideo);
  await waitFor(async () => (accepted.length >= 5 ? true : undefined), 60_000, 'the first videos to be accepted');
  const publicJobs = await paced(PUBLIC_JOBS, PUBLIC_JOBS_PER_SECOND, submitPublicJob);
  const inOrder = await videoSubmissions;
  return { videos: inOrder, publicJobs, refusals: [...inOrder, ...publicJobs].flatMap((submission) => submission.refusals) };
}

/** SIGKILLs Redis once, REDIS_CRASH_AT_MS into the load, with no worker crash under way, and brings it back. */
async function restartRedisOnce(loop: CrashLoop): Promise<{ downMs: number }> {
  await sleep(REDIS_CRASH_AT_MS);
  await loop.pause();
  const killedAt = Date.now();
  await redis.kill();
  progress('redis-server SIGKILLed');
  await sleep(REDIS_DOWN_MS);
  await redis.launch();
  const downMs = Date.now() - killedAt;
  progress(`redis-server back after ${downMs} ms`);
  loop.resume();
  return { downMs };
}

/** What is not finished yet, or undefined when everything is. */
async function unfinishedWork(videoIds: readonly string[]): Promise<Record<string, unknown> | undefined> {
  const videos = await env.db.selectFrom('videos').select(['id', 'status']).where('id', 'in', videoIds).execute();
  const open = videos.filter((video) => !['completed', 'failed', 'cancelled'].includes(video.status));
  const syncCounts = await syncJobs.getJobCounts('waiting', 'active', 'prioritized', 'waiting-children');
  // The metadata schedule's next run is always there, delayed: only other delayed jobs are work left.
  syncCounts.delayed = (await syncJobs.getJobs(['delayed'])).filter((job) => !job.id?.startsWith('repeat:')).length;
  const syncOpen = Object.values(syncCounts).reduce((sum, count) => sum + count, 0);
  const pending = await env.db.selectFrom('webhook_deliveries').select('id').where('state', '=', 'pending').execute();
  const notReceived =
    (await env.db.selectFrom('webhook_deliveries').select('id').execute()).length -
    new Set(receiver.received.map((hit) => String(hit.headers['webhook-id']))).size;
  if (open.length === 0 && syncOpen === 0 && pending.length === 0 && notReceived <= 0) return undefined;
  return { openVideos: open.map((video) => video.id), syncCounts, pendingDeliveries: pending.length, notReceived };
}

async function waitForSettlement(videoIds: readonly string[]): Promise<void> {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  let left = await unfinishedWork(videoIds);
  let reportedAt = 0;
  while (left && Date.now() < deadline) {
    if (Date.now() - reportedAt >= 15_000) {
      progress(
        `waiting for ${(left.openVideos as string[] | undefined)?.length ?? '?'} videos, sync jobs ${JSON.stringify(left.syncCounts)}, ${left.pendingDeliveries} deliveries`,
      );
      reportedAt = Date.now();
    }
    await sleep(2000);
    left = await unfinishedWork(videoIds).catch((error: unknown) => ({ error: String(error) }));
  }
  if (!left) return;
  const stuck = ((left.openVideos as string[] | undefined) ?? []).slice(0, 5);
  const stuckFlows = await Promise.all(stuck.map(async (id) => ({ id, flow: await flows.flowOf(id) })));
  throw new Error(
    `not settled after ${SETTLE_TIMEOUT_MS} ms: ${JSON.stringify(left).slice(0, 2000)}\n${JSON.stringify(stuckFlows, null, 1)}\n${processes.logs(15)}`,
  );
}

interface ChaosRun {
  videos: GeneratedVideo[];
  submitted: Submitted;
  loop: CrashLoop;
  redisDownMs: number;
  /** Date.now() at the start of media generation, of the load, and when the last crash was over. */
  times: { startedAt: number; loadStartedAt: number; chaosEndedAt: number };
}

/** Generates the media, then submits the workload while the crash loop runs and Redis restarts once; stops the loop in any case. */
async function runChaos(): Promise<ChaosRun> {
  const startedAt = Date.now();
  const videos = await generateCopies(env.config.storageDir, VIDEOS);
  progress(`${videos.length} videos generated`);
  const targets = [
    ...IO_WORKERS.map((instance) => ({ instance, app: 'worker-io' as const })),
    ...CPU_WORKERS.map((instance) => ({ instance, app: 'worker-cpu' as const })),
  ];
  const loop = new CrashLoop({ processes, targets, intervalMs: { min: 2000, max: 5000 }, seed: SEED });
  // Runs before the processes are killed: no restart may start once the clean-up has begun.
  teardown.register('crash loop', () => loop.stop().catch(() => {}));
  const loadStartedAt = Date.now();
  loop.start();
  try {
    const redisRestart = restartRedisOnce(loop);
    const submitted = await submitWorkload(videos);
    progress(`${submitted.videos.length} videos and ${submitted.publicJobs.length} public jobs accepted; ${crashReport(loop)}`);
    const { downMs } = await redisRestart;
    await sleep(Math.max(0, loadStartedAt + CHAOS_MS - Date.now()));
    await loop.stop();
    progress(`crashes over: ${crashReport(loop)}`);
    return { videos, submitted, loop, redisDownMs: downMs, times: { startedAt, loadStartedAt, chaosEndedAt: Date.now() } };
  } finally {
    await loop.stop().catch(() => {});
  }
}

const crashReport = (loop: CrashLoop) => `${loop.crashes.length} crashes, slowest restart ${Math.max(0, ...loop.crashes.map((crash) => crash.restartMs))} ms`;

/** Refusals by status and first words, e.g. `{"503 the job queue (Redis) is unreachable": 12}`. */
function refusalKinds(refusals: readonly string[]): Record<string, number> {
  const kinds: Record<string, number> = {};
  for (const refusal of refusals) {
    const kind = refusal.split(' ').slice(0, 7).join(' ');
    kinds[kind] = (kinds[kind] ?? 0) + 1;
  }
  return kinds;
}

/** For a video that did not complete: its status, error, and the audit trail of its steps (`step:status`). */
async function whyNotCompleted(video: { id: string; status: string; error: string | null }): Promise<string> {
  const events = await env.db.selectFrom('job_events').select(['step', 'status']).where('video_id', '=', video.id).orderBy('id').execute();
  return `${video.id} ${video.status}: ${video.error} [${events.map((event) => `${event.step}:${event.status}`).join(' ')}]`;
}

/** Everything stored, tallied, and the counts that go into the closing note (printed). */
async function tally(chaos: ChaosRun) {
  const videoIds = chaos.submitted.videos.map((video) => video.id);
  const youtubeIds = new Map(chaos.submitted.videos.map((video, index) => [video.id, youtubeIdOf(index)]));
  const stored = await env.db.selectFrom('videos').select(['id', 'status', 'error']).execute();
  const notCompleted = await Promise.all(stored.filter((video) => video.status !== 'completed').map(whyNotCompleted));
  const renderedClips = await env.db.selectFrom('clips').select('id').where('status', '=', 'rendered').execute();
  const webhooks = await webhookTally(env.db, videoIds, receiver.received);
  const publicJobs = await publicJobTally(env.db, syncJobs, chaos.submitted.publicJobs, youtubeIds);
  const clipFiles = await clipFileTally(env.db, env.config.storageDir, videoIds);
  const youtubeCalls = simulator.stats().endpoints['youtube.videos.list'].requests;
  const perInstance: Record<string, number> = {};
  for (const crash of chaos.loop.crashes) perInstance[crash.instance] = (perInstance[crash.instance] ?? 0) + 1;
  const { startedAt, loadStartedAt, chaosEndedAt } = chaos.times;
  const counts = {
    jobs: { videos: videoIds.length, publicJobs: chaos.submitted.publicJobs.length },
    videosCompleted: stored.length - notCompleted.length,
    clipsRendered: renderedClips.length,
    clipFiles: clipFiles.files,
    webhooks: { deliveries: webhooks.rows, delivered: webhooks.delivered, postsReceived: webhooks.received, repeatsOfAnId: webhooks.repeatedIds },
    publicJobs: { rows: publicJobs.rows, completedWithFetch: publicJobs.completedWithFetch, youtubeCalls },
    crashes: { total: chaos.loop.crashes.length, perInstance, slowestRestartMs: Math.max(0, ...chaos.loop.crashes.map((crash) => crash.restartMs)) },
    redisDownMs: chaos.redisDownMs,
    refusedThenRetried: refusalKinds(chaos.submitted.refusals),
    seconds: {
      media: Math.round((loadStartedAt - startedAt) / 1000),
      chaos: Math.round((chaosEndedAt - loadStartedAt) / 1000),
      settledAfterChaos: Math.round((Date.now() - chaosEndedAt) / 1000),
    },
  };
  process.stdout.write(`many workers under crashes: ${JSON.stringify(counts)}\n`);
  return { videoIds, stored, notCompleted, renderedClips, webhooks, publicJobs, clipFiles, youtubeCalls };
}

/** Completed videos whose stored effects are not each there exactly once, with the start of what differs. */
async function effectsNotOnce(chaos: ChaosRun, completed: ReadonlySet<string>): Promise<string[]> {
  const problems: string[] = [];
  for (const [index, { id }] of chaos.submitted.videos.entries()) {
    if (!completed.has(id)) continue;
    await expectExactlyOnceEffects(env.db, id, chaos.videos[index]!.cutSeconds).catch((error: unknown) =>
      problems.push(`${id}: ${(error as Error).message.replace(/\s+/g, ' ').slice(0, 600)}`),
    );
  }
  return problems;
}

it('stores every effect exactly once across 1,040 jobs while workers are SIGKILLed every few seconds and Redis restarts once', async () => {
  const chaos = await runChaos().catch((error: unknown) => {
    throw new Error(`${(error as Error).message}\nexited: ${JSON.stringify(processes.exited())}\n${processes.logs(20)}`, { cause: error });
  });
  await waitForSettlement(chaos.submitted.videos.map((video) => video.id));
  const { videoIds, stored, notCompleted, renderedClips, webhooks, publicJobs, clipFiles, youtubeCalls } = await tally(chaos);

  // One expectation, so a failure shows every effect that is not there exactly once.
  expect({
    // Only accepted videos exist (a refused submission left nothing), every one completed with each effect once.
    videosNotAccepted: stored.map((video) => video.id).filter((id) => !videoIds.includes(id)),
    videosNotCompleted: notCompleted,
    effectsNotOnce: await effectsNotOnce(chaos, new Set(stored.filter((video) => video.status === 'completed').map((video) => video.id))),
    clipFiles,
    webhooks,
    publicJobs,
    // Each completed refresh asked YouTube at least once (a revalidation too); more are the at-least-once cost.
    youtubeCallsCoverRefreshes: youtubeCalls >= PUBLIC_JOBS + videoIds.length,
    crashedTenTimesOrMore: chaos.loop.crashes.length >= 10,
    exited: processes.exited(),
  }).toEqual({
    videosNotAccepted: [],
    videosNotCompleted: [],
    effectsNotOnce: [],
    clipFiles: { files: 2 * renderedClips.length, stray: [], missing: [] },
    webhooks: {
      rows: videoIds.length,
      delivered: videoIds.length,
      videosWithoutOneRow: [],
      received: webhooks.received,
      distinctIds: videoIds.length,
      repeatedIds: webhooks.received - videoIds.length,
      unknownIds: [],
      missingIds: [],
      videosUnderTwoIds: [],
    },
    publicJobs: {
      accepted: PUBLIC_JOBS,
      rows: PUBLIC_JOBS,
      rowsAreTheAccepted: true,
      completedWithFetch: PUBLIC_JOBS,
      unfinished: [],
      videosWithFreshMetadata: videoIds.length,
      videosWithoutFreshMetadata: [],
    },
    youtubeCallsCoverRefreshes: true,
    crashedTenTimesOrMore: true,
    exited: [],
  });
});
