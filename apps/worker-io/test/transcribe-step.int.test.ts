/**
 * The transcription step against the upstream simulator, with the real database, storage and
 * ffmpeg: it saves the transcript, and a run after one that saved it (its end not recorded: the
 * database away, a worker lost) takes the saved one instead of uploading the sound again.
 */
import { randomUUID } from 'node:crypto';
import { copyFile } from 'node:fs/promises';
import path from 'node:path';
import { AiResultsRepository, AnalysisRepository, LocalStorage, Registry, VideosRepository } from '@clipline/shared';
import { createProviderClients, loadProviderSettings, type ProviderClients } from '../src/providers/index.js';
import { transcribe } from '../src/ai/transcribe.js';
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
