/**
 * What a video step records when its upstream is down, on a real database: within the outage
 * horizon the step stays active with what it waits for and the error goes on to the runtime
 * (which delays the job without spending an attempt); past it, an optional step is skipped and
 * an essential one fails its video, both with a reason naming the upstream and the limit.
 */
import { randomUUID } from 'node:crypto';
import {
  classifyJobError,
  RateLimitedError,
  runOptionalStep,
  runVideoStep,
  UpstreamOutageError,
  upstreamOutageVerdict,
  VideosRepository,
  type UpstreamWait,
} from '@clipline/shared';
import { createTestEnvironment, type TestEnvironment } from '../../../tests/helpers/services.js';

let env: TestEnvironment;
let videos: VideosRepository;

beforeAll(async () => {
  env = await createTestEnvironment();
  videos = new VideosRepository(env.db);
});

afterAll(async () => {
  await env.cleanup();
});

const HORIZON_MS = 60_000;
const outage = (options: { judged?: boolean } = {}) => new UpstreamOutageError('stability', 'stability circuit breaker is open', 5000, HORIZON_MS, options);
/** A job's record of a wait that began `agoMs` before now. */
const waitedFor = (agoMs: number): Record<string, UpstreamWait> => ({ stability: { since: Date.now() - agoMs, deferrals: 3 } });

async function videoWith(step: 'thumbnail' | 'ingest'): Promise<string> {
  const id = randomUUID();
  await videos.create({ id, source: '/a.mp4', title: null, steps: [step] });
  return id;
}

function job(videoId: string, upstreamWaits: Record<string, UpstreamWait> = {}, attemptsMade = 0) {
  return { id: `${videoId}-job`, name: 'step', queue: 'q', data: { videoId }, attemptsMade, maxAttempts: 3, upstreamWaits, updateProgress: async () => {} };
}

describe('the outage verdict', () => {
  it('waits for what is left of the open time, never past the horizon, then gives up naming the upstream and the limit', () => {
    const error = outage();
    expect(upstreamOutageVerdict(error, undefined)).toEqual({ wait: true, delayMs: 5000 });
    expect(upstreamOutageVerdict(error, { since: error.observedAt - (HORIZON_MS - 2000), deferrals: 9 })).toEqual({ wait: true, delayMs: 2000 });
    const verdict = upstreamOutageVerdict(error, { since: error.observedAt - HORIZON_MS, deferrals: 12 });
    expect(verdict).toEqual({
      wait: false,
      reason:
        'gave up waiting for stability: unavailable for 60 s, the limit is 60 s (PROVIDER_OUTAGE_MAX_SECONDS); last error: stability circuit breaker is open',
    });
    // A horizon of 0 never waits.
    expect(upstreamOutageVerdict(new UpstreamOutageError('openai', 'down', 5000, 0), undefined)).toMatchObject({ wait: false });
  });

  it('waits at once for an upstream judged down; a failure not judged so is retried by the attempts first, and waited for on the last', () => {
    expect(classifyJobError(outage())).toMatchObject({ kind: 'upstream-outage' });
    expect(classifyJobError(outage({ judged: false }))).toEqual({ kind: 'transient' });
    expect(classifyJobError(outage({ judged: false }), undefined, { last: true })).toMatchObject({ kind: 'upstream-outage' });
  });
});

describe('an optional step whose upstream is down', () => {
  it('stays active with what it waits for, and passes the error on, within the horizon', async () => {
    const id = await videoWith('thumbnail');
    const error = outage();
    await expect(
      runOptionalStep('thumbnail', job(id, waitedFor(10_000)), videos, async () => {
        throw error;
      }),
    ).rejects.toBe(error);
    const [step] = (await videos.find(id))!.steps;
    expect(step).toMatchObject({ status: 'active', attempts: 1 });
    expect(step!.reason).toMatch(/^waiting for stability to recover, next try in about 5 s: stability circuit breaker is open$/);
  });

  it('is skipped past the horizon with the reason, and the video is untouched', async () => {
    const id = await videoWith('thumbnail');
    const outcome = await runOptionalStep('thumbnail', job(id, waitedFor(HORIZON_MS + 1000)), videos, async () => {
      throw outage();
    });
    expect(outcome).toEqual({
      skipped: expect.stringMatching(/^gave up waiting for stability: unavailable for 61(\.\d)? s, the limit is 60 s \(PROVIDER_OUTAGE_MAX_SECONDS\)/),
    });
    const video = (await videos.find(id))!;
    expect(video.steps[0]).toMatchObject({ status: 'skipped', reason: (outcome as { skipped: string }).skipped });
    expect(video.status).toBe('queued');
  });

  it('spends its attempts on failures not judged an outage, as before', async () => {
    const id = await videoWith('thumbnail');
    const error = outage({ judged: false });
    await expect(
      runOptionalStep('thumbnail', job(id), videos, async () => {
        throw error;
      }),
    ).rejects.toBe(error);
    expect((await videos.find(id))!.steps[0]).toMatchObject({ status: 'active', reason: 'attempt 1 failed: stability circuit breaker is open' });
  });
});

describe('an essential step whose upstream is down', () => {
  it('waits within the horizon, and past it fails its video with the reason', async () => {
    const id = await videoWith('ingest');
    const error = outage();
    await expect(
      runVideoStep('ingest', job(id, waitedFor(1000)), videos, async () => {
        throw error;
      }),
    ).rejects.toBe(error);
    expect((await videos.find(id))!).toMatchObject({
      status: 'processing',
      steps: [{ status: 'active', reason: expect.stringMatching(/^waiting for stability/) }],
    });

    await expect(
      runVideoStep('ingest', job(id, waitedFor(HORIZON_MS + 1000)), videos, async () => {
        throw outage();
      }),
    ).rejects.toThrow(/^gave up waiting for stability: unavailable for 61(\.\d)? s/);
    const failed = (await videos.find(id))!;
    expect(failed.status).toBe('failed');
    expect(failed.error).toMatch(/^ingest: gave up waiting for stability: unavailable for 61(\.\d)? s, the limit is 60 s \(PROVIDER_OUTAGE_MAX_SECONDS\)/);
    expect(failed.steps[0]).toMatchObject({ status: 'failed', reason: failed.error });
  });
});

describe('a step whose provider keeps refusing with 429s', () => {
  /** A 429 of the provider: `upstream` when it is a wall (the guard saw no call succeed for the horizon). */
  const refused = (wall: boolean) =>
    new RateLimitedError(
      'stability is rate-limited (upstream); retry in 5000 ms',
      5000,
      wall ? { upstream: { name: 'stability', horizonMs: HORIZON_MS } } : {},
    );

  it('is classified as rate-limited, carrying the provider as an upstream only when it is a wall', () => {
    expect(classifyJobError(refused(true))).toEqual({ kind: 'rate-limited', retryAfterMs: 5000, upstream: expect.any(UpstreamOutageError) });
    expect(classifyJobError(refused(false))).toEqual({ kind: 'rate-limited', retryAfterMs: 5000 });
  });

  it('waits within the horizon, and past it an optional step is skipped with the reason', async () => {
    const id = await videoWith('thumbnail');
    const error = refused(true);
    await expect(runOptionalStep('thumbnail', job(id, waitedFor(10_000)), videos, () => Promise.reject(error))).rejects.toBe(error);
    expect((await videos.find(id))!.steps[0]).toMatchObject({ status: 'active', reason: expect.stringMatching(/^waiting for stability to recover/) });
    const outcome = await runOptionalStep('thumbnail', job(id, waitedFor(HORIZON_MS + 1000)), videos, () => Promise.reject(refused(true)));
    expect(outcome).toEqual({
      skipped: expect.stringMatching(
        /^gave up waiting for stability: unavailable for 61(\.\d)? s, the limit is 60 s \(PROVIDER_OUTAGE_MAX_SECONDS\); last error: stability is rate-limited/,
      ),
    });
    expect((await videos.find(id))!.steps[0]).toMatchObject({ status: 'skipped' });
  });

  it('a busy provider (no wall) is waited for without limit, and records nothing', async () => {
    const id = await videoWith('thumbnail');
    const error = refused(false);
    await expect(runOptionalStep('thumbnail', job(id, waitedFor(HORIZON_MS * 10)), videos, () => Promise.reject(error))).rejects.toBe(error);
    expect((await videos.find(id))!.steps[0]).toMatchObject({ status: 'active', reason: null });
  });

  it('an essential step on its last attempt does not fail its video for a rate limit, which spends no attempt', async () => {
    const id = await videoWith('ingest');
    const error = refused(false);
    await expect(runVideoStep('ingest', job(id, {}, 2), videos, () => Promise.reject(error))).rejects.toBe(error);
    const video = (await videos.find(id))!;
    expect(video.status).toBe('processing');
    expect(video.steps[0]).toMatchObject({ status: 'active', reason: null });
  });
});
