/**
 * Chaos: one of two worker-cpu processes is SIGKILLed in the middle of analysing a video. No
 * shutdown code runs, so the job stays active in Redis until its lock expires; BullMQ's stall
 * check on the surviving worker must put it back, and the survivor must finish the video, with
 * each effect exactly once (one `completed` analyze event, no duplicated scenes or frames).
 */
import path from 'node:path';
import { jest } from '@jest/globals';
import { analyzeQueue } from '@clipline/shared';
import { generateVideo } from '../helpers/media.js';
import { createTestEnvironment, waitFor, type TestEnvironment } from '../helpers/services.js';
import { ClipLineProcesses } from './support/clipline-processes.js';
import { completedSettlement, FlowInspector } from './support/flow-state.js';
import { descendantsOf, isRunning } from './support/process-tree.js';
import { expectExactlyOnceEffects } from './support/stored-outcome.js';
import { createTeardown } from './support/teardown.js';
import { SHORT_CLIPS, waitForAnalysis } from './support/video-batch.js';

// Default lock (30 s) and stall check (every 30 s; a job must be seen stalled by two checks in a
// row): the analysis restarts 30-90 s after the crash, then runs again from the start.
jest.setTimeout(200_000);

const WORKERS = ['worker-cpu-a', 'worker-cpu-b'] as const;
const teardown = createTeardown('chaos-worker-cpu-crash');
let env: TestEnvironment;
let processes: ClipLineProcesses;
let flows: FlowInspector;

beforeAll(async () => {
  env = await createTestEnvironment({ LOG_LEVEL: 'info' });
  teardown.register('test environment', () => env.cleanup());
  flows = new FlowInspector(env.config.redisUrl, env.config.queuePrefix);
  teardown.register('flow inspector', () => flows.close());
  // One pool thread each: each worker analyses one video at a time, as on a loaded machine.
  processes = await ClipLineProcesses.create({ ...env.env, CPU_POOL_THREADS: '1' });
  teardown.register('clipline processes', () => processes.killAll());
  await Promise.all([processes.start('producer'), processes.start('worker-io'), ...WORKERS.map((name) => processes.start('worker-cpu', name))]);
});

afterAll(async () => {
  expect(await teardown.shutdown('tests finished')).toBe(0);
});

it('recovers a job whose worker-cpu was SIGKILLed mid-analysis and completes the video exactly once', async () => {
  // ~200 s at 10 fps: about 2,000 sampled frames, so the analysis is still running when the
  // crash comes. The third source (mandelbrot) is slow to generate, hence its short segment.
  const video = await generateVideo({ path: path.join(env.config.storageDir, 'long.mp4'), segments: [50, 50, 1.5, 50, 50], fps: 10, audio: false });
  const id = await processes.submit({ source: video.path, title: 'crash victim', options: SHORT_CLIPS });
  await waitForAnalysis(processes, [id]);
  // The worker analysing it is the one running ffmpeg (started by its spawner process, a child of its own).
  const analysing = await waitFor(
    async () => {
      for (const name of WORKERS) {
        if ((await descendantsOf(processes.instance(name).child.pid!)).some((process) => process.command === 'ffmpeg')) return name;
      }
      return undefined;
    },
    20_000,
    'a worker-cpu to run ffmpeg for the analysis',
  );
  const survivor = WORKERS.find((name) => name !== analysing)!;
  // Let it write some frame metrics first (analysis spans 10-70 %), so the redo has rows to overwrite.
  await waitFor(async () => ((await processes.api('GET', `/v1/videos/${id}`)).body.progress >= 20 ? true : undefined), 30_000, 'the analysis to be under way');

  const orphans = await processes.crash(analysing);
  const crashedAt = Date.now();
  expect(processes.instance(analysing).child.signalCode).toBe('SIGKILL');
  // ffmpeg writes into a pipe nobody reads any more: it must end by itself, not decode on.
  await waitFor(
    async () => ((await Promise.all(orphans.map(isRunning))).some(Boolean) ? undefined : true),
    15_000,
    "the crashed worker's ffmpeg children to exit",
  );

  // Nothing handed the job back: it is still active, under the dead worker's lock.
  expect((await flows.flowOf(id))[analyzeQueue.name]).toBe('active');
  expect(await flows.settle(processes, id, 150_000)).toEqual(completedSettlement(id, 'skipped'));
  const recoveredInMs = Date.now() - crashedAt;

  const job = await flows.job(analyzeQueue.name, id);
  // Recovered by the stall check (counted once): started twice, yet only one attempt spent.
  expect({ state: await job?.getState(), stalledCounter: job?.stalledCounter, attemptsStarted: job?.attemptsStarted, attemptsMade: job?.attemptsMade }).toEqual(
    {
      state: 'completed',
      stalledCounter: 1,
      attemptsStarted: 2,
      attemptsMade: 1,
    },
  );
  const events = await env.db
    .selectFrom('job_events')
    .select(['status', 'created_at'])
    .where('video_id', '=', id)
    .where('step', '=', 'analyze')
    .orderBy('id')
    .execute();
  // Started by the crashed worker, started again by the survivor, completed once.
  expect(events.map((event) => event.status)).toEqual(['active', 'active', 'completed']);
  await expectExactlyOnceEffects(env.db, id, video.cutSeconds);
  expect(processes.exited()).toEqual([{ instance: analysing, code: null, signal: 'SIGKILL' }]);
  expect(processes.instance(survivor).child.exitCode).toBeNull();
  const restartedInMs = new Date(events[1]!.created_at).getTime() - crashedAt;
  process.stdout.write(`worker-cpu crash: analysis restarted ${restartedInMs} ms and the video completed ${recoveredInMs} ms after the crash\n`);
});
