/**
 * AI steps against the upstream simulator, with the real database, storage and ffmpeg. The
 * transcription saves the transcript, and a run after one that saved it (its end not recorded:
 * the database away, a worker lost) takes the saved one instead of uploading the sound again.
 * Captions and cover images: a clip the model declines goes without, and the others still get theirs.
 */
import { randomUUID } from 'node:crypto';
import { copyFile } from 'node:fs/promises';
import path from 'node:path';
import { AiResultsRepository, AnalysisRepository, LocalStorage, Registry, VideosRepository } from '@clipline/shared';
import { createProviderClients, loadProviderSettings, type ProviderClients } from '../src/providers/index.js';
import { transcribe } from '../src/ai/transcribe.js';
import { generateThumbnails, writeCaptions } from '../src/ai/ai-steps.js';
import { REFUSAL_MARKER } from '../../../infra/upstream-sim/src/endpoints/endpoint.js';
import { generateVideo, TOOLS } from '../../../tests/helpers/media.js';
import { startUpstreamFixture, type UpstreamFixture } from './upstream-fixture.js';

let fixture: UpstreamFixture;
let providers: ProviderClients;

beforeAll(async () => {
  fixture = await startUpstreamFixture();
  const settings = loadProviderSettings({ UPSTREAM_SIM_URL: fixture.sim.url });
  providers = createProviderClients({ settings, redis: fixture.redis, keyPrefix: fixture.env.config.queuePrefix, registry: new Registry() });
});

afterAll(async () => {
  providers.close();
  await fixture.close();
});

it('uploads the sound once: a second run finds the saved transcript and makes no call', async () => {
  const { env, sim } = fixture;
  const videos = new VideosRepository(env.db);
  const storage = new LocalStorage(env.config.storageDir);
  const id = randomUUID();
  await videos.create({ id, source: '/media/talk.mp4', title: null, steps: ['transcribe'] });
  const key = `videos/${id}/source.mp4`;
  const video = await generateVideo({ path: path.join(env.config.storageDir, `${id}.mp4`), segments: [2, 2] });
  await copyFile(video.path, await storage.prepare(key));
  await videos.setSource(id, { storageKey: key, sizeBytes: 1 });
  const deps = { providers, videos, analyses: new AnalysisRepository(env.db), results: new AiResultsRepository(env.db), storage, ffmpegPath: TOOLS.ffmpegPath };
  const job = { data: { videoId: id } } as never;

  const first = await transcribe(deps, job);
  const calls = () => sim.stats().endpoints['openai.audio.transcriptions'].requests;
  expect(calls()).toBe(1);
  expect(first).toEqual({ done: { words: expect.any(Number), segments: expect.any(Number) } });
  expect(await transcribe(deps, job)).toEqual(first);
  expect(calls()).toBe(1);
});

/**
 * A video with three rendered clips, the second of whose reasons makes a simulated model decline
 * it, and the steps' dependencies.
 */
async function clippedVideo() {
  const { env } = fixture;
  const videos = new VideosRepository(env.db);
  const analyses = new AnalysisRepository(env.db);
  const results = new AiResultsRepository(env.db);
  const deps = { providers, videos, analyses, results, storage: new LocalStorage(env.config.storageDir), ffmpegPath: TOOLS.ffmpegPath };
  const id = randomUUID();
  await videos.create({ id, source: '/media/talk.mp4', title: 'a talk', steps: ['captions'] });
  const reasons = [['strong motion'], ['loud audio', REFUSAL_MARKER], ['a clear hook']];
  for (const [clipIndex, why] of reasons.entries()) {
    await analyses.upsertClip({
      videoId: id,
      clipIndex,
      startSeconds: clipIndex * 10,
      endSeconds: clipIndex * 10 + 6,
      score: 80 - clipIndex,
      reasons: why,
      aspect: '9:16',
      status: 'rendered',
      storageKey: `videos/${id}/clips/${clipIndex}.mp4`,
      thumbnailKey: `videos/${id}/clips/${clipIndex}.jpg`,
      width: 360,
      height: 640,
      durationSeconds: 6,
    });
  }
  return { id, deps, clips: () => analyses.listClips(id), extras: () => results.clipExtras(id) };
}

it('captions every clip the model does not decline, and says which it declined', async () => {
  const { sim } = fixture;
  const { id, deps, clips, extras } = await clippedVideo();
  const before = sim.stats().endpoints['openai.chat.completions'].requests;
  const outcome = await writeCaptions(deps, { data: { videoId: id } } as never);
  expect(outcome).toEqual({
    done: { clips: 3, written: 2 },
    note: expect.stringMatching(/^written without a transcript; no caption for clip 2: openai declined to answer: I'm sorry/),
  });
  expect(sim.stats().endpoints['openai.chat.completions'].requests - before).toBe(3);
  const written = await extras();
  expect((await clips()).map((clip) => Boolean(written.get(clip.id)?.caption))).toEqual([true, false, true]);
});

it('draws a cover for every clip whose prompt is not refused; the refused one keeps its sharpest frame', async () => {
  const { sim } = fixture;
  const { id, deps, clips, extras } = await clippedVideo();
  const before = sim.stats().endpoints['stability.text-to-image'].requests;
  expect(await generateThumbnails(deps, { data: { videoId: id } } as never)).toEqual({ done: { generated: 2 }, note: '1 clips keep the sharpest frame' });
  expect(sim.stats().endpoints['stability.text-to-image'].requests - before).toBe(3);
  const drawn = await extras();
  expect((await clips()).map((clip) => drawn.get(clip.id)?.thumbnailKey ?? null)).toEqual([
    `videos/${id}/clips/0-generated.png`,
    null,
    `videos/${id}/clips/2-generated.png`,
  ]);
});
