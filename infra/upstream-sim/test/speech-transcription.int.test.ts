/**
 * The simulator listens: a transcription of real speech (espeak-ng sentences with 1 s pauses)
 * has one sentence per stretch of speech, its words inside what is heard, nothing over the
 * silences; and clip ranking scores candidates from their text, the same text the same way.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createUpstreamSimulator, type UpstreamSimulator } from '../src/index.js';
import { generateSpokenVideo, type SpokenVideo } from '../../../tests/helpers/speech-media.js';

const KEY = 'sim-test-key';
const auth = { authorization: `Bearer ${KEY}` };
let sim: UpstreamSimulator;
let dir: string;
let talk: SpokenVideo;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'sim-speech-'));
  talk = await generateSpokenVideo({
    path: path.join(dir, 'talk.mp4'),
    sentences: ['The first thing to know is simple.', 'Then comes the hard part of the work.', 'And that is all for today.'],
  });
  sim = await createUpstreamSimulator({ apiKey: KEY, mediaDir: dir, seed: 3 });
}, 60_000);

afterAll(async () => {
  await sim?.close();
  await rm(dir, { recursive: true, force: true });
});

interface Verbose {
  segments: { start: number; end: number; text: string }[];
  words: { word: string; start: number; end: number }[];
}

it('transcribes speech where it is heard: a sentence per stretch, words inside it, none over the pauses', async () => {
  const form = new FormData();
  form.set('file', new Blob([await readFile(talk.path)], { type: 'video/mp4' }), 'talk.mp4');
  form.set('model', 'whisper-1');
  form.set('response_format', 'verbose_json');
  form.append('timestamp_granularities[]', 'segment');
  form.append('timestamp_granularities[]', 'word');
  const res = await fetch(`${sim.url}/v1/audio/transcriptions`, { method: 'POST', headers: auth, body: form });
  expect(res.status).toBe(200);
  const body = (await res.json()) as Verbose;
  expect(body.segments).toHaveLength(talk.sentences.length);
  body.segments.forEach((segment, index) => {
    const heard = talk.sentences[index]!;
    expect(Math.abs(segment.start - heard.startSeconds)).toBeLessThan(0.15);
    expect(Math.abs(segment.end - heard.endSeconds)).toBeLessThan(0.15);
    expect(segment.text.trim()).toMatch(/^[A-Z].*\.$/);
  });
  expect(body.words.length).toBeGreaterThan(talk.sentences.length * 2);
  for (const word of body.words) {
    expect(talk.sentences.some((heard) => word.start >= heard.startSeconds - 0.15 && word.end <= heard.endSeconds + 0.15)).toBe(true);
    expect(word.end).toBeGreaterThan(word.start);
  }
});

it('ranks clip candidates from their text, deterministically, and low when nothing is said', async () => {
  const ask = async () => {
    const res = await fetch(`${sim.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'gpt-4o-mini',
        messages: [
          { role: 'system', content: 'Score each candidate.' },
          {
            role: 'user',
            content:
              'Candidate 0:\nWe lost every service on a Sunday. One full disk did it. Here is how we found it.\n\nCandidate 1:\n(no speech)\n\nCandidate 2:\nand then',
          },
        ],
        response_format: { type: 'json_schema', json_schema: { name: 'clip_ranking', schema: { type: 'object' }, strict: true } },
      }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { choices: { message: { content: string } }[] };
    return JSON.parse(body.choices[0]!.message.content) as { scores: { index: number; score: number; reason: string }[] };
  };
  const [first, second] = await Promise.all([ask(), ask()]);
  expect(first).toEqual(second);
  expect(first.scores.map((entry) => entry.index)).toEqual([0, 1, 2]);
  const [full, silent, fragment] = first.scores as [{ score: number; reason: string }, { score: number }, { score: number; reason: string }];
  expect(full.score).toBeGreaterThan(fragment.score);
  expect(silent.score).toBeLessThan(10);
  expect(full.reason).toMatch(/^hook: .+; 3 complete sentences stand alone; payoff: /);
  expect(fragment.reason).toContain('an unfinished thought');
});
