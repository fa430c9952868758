import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { inflateSync } from 'node:zlib';
import { createUpstreamSimulator, type UpstreamSimulator } from '../src/index.js';
import { REFUSAL_MARKER } from '../src/endpoints/endpoint.js';
import { expectValid, loadContracts, type ProviderContracts } from './api-contracts.js';
import { generateVideo } from '../../../tests/helpers/media.js';

const run = promisify(execFile);
const KEY = 'contract-key';

let sim: UpstreamSimulator;
let contracts: ProviderContracts;
let dir: string;
let video: Buffer;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'upstream-sim-contracts-'));
  const generated = await generateVideo({ path: path.join(dir, 'clip.mp4'), segments: [1, 1], audio: true });
  video = await readFile(generated.path);
  contracts = loadContracts();
  sim = await createUpstreamSimulator({ apiKey: KEY, mediaDir: dir, seed: 7 });
});

afterAll(async () => {
  await sim.close();
  await rm(dir, { recursive: true, force: true });
});

const json = (headers: Record<string, string> = {}) => ({ 'content-type': 'application/json', ...headers });

async function probe(file: string): Promise<{ codec: string; duration: number }> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name:format=duration', '-of', 'json', file]);
  const parsed = JSON.parse(stdout) as { streams: { codec_name: string }[]; format: { duration: string } };
  return { codec: parsed.streams[0]?.codec_name ?? '', duration: Number(parsed.format.duration) };
}

/** Reads width and height from a PNG's IHDR and inflates its pixels, which proves the file is whole. */
function decodePngSize(png: Buffer): { width: number; height: number } {
  expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  const width = png.readUInt32BE(16);
  const height = png.readUInt32BE(20);
  const chunks: Buffer[] = [];
  for (let offset = 8; offset < png.length; ) {
    const length = png.readUInt32BE(offset);
    if (png.toString('ascii', offset + 4, offset + 8) === 'IDAT') chunks.push(png.subarray(offset + 8, offset + 8 + length));
    offset += length + 12;
  }
  expect(inflateSync(Buffer.concat(chunks)).length).toBe((width * 3 + 1) * height);
  return { width, height };
}

describe('YouTube videos.list', () => {
  const url = (query: string) => `${sim.url}/youtube/v3/videos?${query}`;

  it('answers a VideoListResponse with snippet, contentDetails and statistics, and an ETag', async () => {
    const res = await fetch(url(`part=snippet,contentDetails,statistics&id=dQw4w9WgXcQ,goneVideo01&key=${KEY}`));
    expect(res.status).toBe(200);
    const body = (await res.json()) as { etag: string; items: { id: string; snippet: { title: string }; contentDetails: { duration: string } }[] };
    expectValid(contracts.youtubeVideoList, body, 'videos.list answer');
    expect(body.items.map((item) => item.id)).toEqual(['dQw4w9WgXcQ']);
    expect(body.items[0]?.contentDetails.duration).toMatch(/^PT(\d+H)?(\d+M)?(\d+S)?$/);
    expect(res.headers.get('etag')).toBe(`"${body.etag}"`);
  });

  it('answers 304 to a matching If-None-Match and 200 again once the data changed', async () => {
    const first = await fetch(url(`part=statistics&id=dQw4w9WgXcQ&key=${KEY}`));
    const etag = first.headers.get('etag') ?? '';
    const again = await fetch(url(`part=statistics&id=dQw4w9WgXcQ&key=${KEY}`), { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe('');
    sim.configure({ youtubeRevision: 1 });
    const changed = await fetch(url(`part=statistics&id=dQw4w9WgXcQ&key=${KEY}`), { headers: { 'if-none-match': etag } });
    expect(changed.status).toBe(200);
    expect(changed.headers.get('etag')).not.toBe(etag);
    sim.configure({ youtubeRevision: 0 });
  });

  it('refuses a missing key with 403 and a wrong one with 400, in Google’s error shape', async () => {
    const missing = await fetch(url('part=snippet&id=dQw4w9WgXcQ'));
    expect(missing.status).toBe(403);
    expectValid(contracts.youtubeError, await missing.json(), 'missing-key error');
    const wrong = await fetch(url('part=snippet&id=dQw4w9WgXcQ&key=nope'));
    expect(wrong.status).toBe(400);
    const body = (await wrong.json()) as { error: { message: string; details: { reason: string }[] } };
    expectValid(contracts.youtubeError, body, 'wrong-key error');
    expect(body.error.details[0]?.reason).toBe('API_KEY_INVALID');
    // The key may come in Google's header instead, as clipline's client sends it.
    expect((await fetch(url('part=snippet&id=dQw4w9WgXcQ'), { headers: { 'x-goog-api-key': KEY } })).status).toBe(200);
    expect((await fetch(url('part=snippet&id=dQw4w9WgXcQ'), { headers: { 'x-goog-api-key': 'nope' } })).status).toBe(400);
  });

  it('names what is wrong with a request without part or filter', async () => {
    const noPart = await fetch(url(`id=dQw4w9WgXcQ&key=${KEY}`));
    expect(noPart.status).toBe(400);
    expect(((await noPart.json()) as { error: { message: string } }).error.message).toMatch(/part/);
    const noFilter = await fetch(url(`part=snippet&key=${KEY}`));
    expect(((await noFilter.json()) as { error: { message: string } }).error.message).toMatch(/No filter selected/);
  });
});

describe('OpenAI', () => {
  const auth = { authorization: `Bearer ${KEY}` };

  it('chat completions answer a CreateChatCompletionResponse', async () => {
    const res = await fetch(`${sim.url}/v1/chat/completions`, {
      method: 'POST',
      headers: json(auth),
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Write a caption' }] }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { choices: { message: { content: string } }[] };
    expectValid(contracts.chatCompletion, body, 'chat completion');
    expect(body.choices[0]?.message.content.length).toBeGreaterThan(10);
  });

  it('chat completions decline a prompt holding the decline marker, as a refusal in the same shape', async () => {
    const res = await fetch(`${sim.url}/v1/chat/completions`, {
      method: 'POST',
      headers: json(auth),
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `Write a caption ${REFUSAL_MARKER}` }] }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { choices: { message: { content: string | null; refusal: string | null } }[] };
    expectValid(contracts.chatCompletion, body, 'chat completion');
    expect(body.choices[0]?.message).toMatchObject({ content: null, refusal: expect.stringMatching(/can't help/) });
  });

  it('chat completions fill a json_schema response format with JSON that fits it', async () => {
    const schema = {
      type: 'object',
      properties: { title: { type: 'string' }, hashtags: { type: 'array', items: { type: 'string' } } },
      required: ['title', 'hashtags'],
    };
    const res = await fetch(`${sim.url}/v1/chat/completions`, {
      method: 'POST',
      headers: json(auth),
      body: JSON.stringify({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'x' }],
        response_format: { type: 'json_schema', json_schema: { name: 'clip', schema } },
      }),
    });
    const content = JSON.parse(((await res.json()) as { choices: { message: { content: string } }[] }).choices[0]?.message.content ?? '') as {
      title: string;
      hashtags: string[];
    };
    expect(typeof content.title).toBe('string');
    expect(content.hashtags.length).toBe(3);
    expect(content.hashtags.every((tag) => tag.startsWith('#'))).toBe(true);
  });

  it('the same request gets the same answer under one seed', async () => {
    const ask = async () => {
      const res = await fetch(`${sim.url}/v1/chat/completions`, {
        method: 'POST',
        headers: json(auth),
        body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'same' }] }),
      });
      return ((await res.json()) as { choices: { message: { content: string } }[] }).choices[0]?.message.content;
    };
    expect(await ask()).toBe(await ask());
  });

  it('refuses missing and wrong keys with 401 ErrorResponse bodies, and bad requests with 400', async () => {
    const missing = await fetch(`${sim.url}/v1/chat/completions`, { method: 'POST', headers: json(), body: '{}' });
    expect(missing.status).toBe(401);
    expectValid(contracts.openAiError, await missing.json(), 'missing-key error');
    const wrong = await fetch(`${sim.url}/v1/chat/completions`, { method: 'POST', headers: json({ authorization: 'Bearer sk-wrong-key-123' }), body: '{}' });
    const wrongBody = (await wrong.json()) as { error: { code: string } };
    expect(wrong.status).toBe(401);
    expect(wrongBody.error.code).toBe('invalid_api_key');
    const noMessages = await fetch(`${sim.url}/v1/chat/completions`, { method: 'POST', headers: json(auth), body: JSON.stringify({ model: 'm' }) });
    expect(noMessages.status).toBe(400);
    const noMessagesBody = (await noMessages.json()) as { error: { param: string } };
    expectValid(contracts.openAiError, noMessagesBody, 'bad request error');
    expect(noMessagesBody.error.param).toBe('messages');
  });

  it('transcriptions take a multipart upload and answer json and verbose_json with segments over the real duration', async () => {
    const form = (format: string) => {
      const data = new FormData();
      data.set('file', new Blob([video], { type: 'video/mp4' }), 'clip.mp4');
      data.set('model', 'whisper-1');
      data.set('response_format', format);
      return data;
    };
    const plain = await fetch(`${sim.url}/v1/audio/transcriptions`, { method: 'POST', headers: auth, body: form('json') });
    expect(plain.status).toBe(200);
    expectValid(contracts.transcriptionJson, await plain.json(), 'json transcription');
    const verbose = await fetch(`${sim.url}/v1/audio/transcriptions`, { method: 'POST', headers: auth, body: form('verbose_json') });
    const body = (await verbose.json()) as { duration: number; segments: { start: number; end: number; text: string }[] };
    expectValid(contracts.transcriptionVerboseJson, body, 'verbose_json transcription');
    expect(body.duration).toBeGreaterThan(1.8);
    expect(body.duration).toBeLessThan(2.3);
    expect(body.segments.length).toBeGreaterThan(0);
    expect(body.segments.at(-1)?.end).toBeCloseTo(body.duration, 2);
  });

  it('transcriptions refuse an upload that is not media, naming the formats', async () => {
    const data = new FormData();
    data.set('file', new Blob([Buffer.from('not audio at all')]), 'notes.txt');
    data.set('model', 'whisper-1');
    const res = await fetch(`${sim.url}/v1/audio/transcriptions`, { method: 'POST', headers: auth, body: data });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { message: string } };
    expectValid(contracts.openAiError, body, 'invalid file error');
    expect(body.error.message).toMatch(/Invalid file format/);
  });
});

describe('Stability text-to-image', () => {
  const endpoint = () => `${sim.url}/v1/generation/stable-diffusion-xl-1024-v1-0/text-to-image`;

  it('answers base64 artifacts that are real PNGs of the asked size', async () => {
    const res = await fetch(endpoint(), {
      method: 'POST',
      headers: json({ authorization: `Bearer ${KEY}`, accept: 'application/json' }),
      body: JSON.stringify({ text_prompts: [{ text: 'a lighthouse on a cliff' }], width: 640, height: 384, samples: 2 }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { artifacts: { base64: string; seed: number; finishReason: string }[] };
    expectValid(contracts.stabilityArtifacts, body.artifacts, 'text-to-image artifacts');
    expect(body.artifacts).toHaveLength(2);
    for (const artifact of body.artifacts) {
      expect(decodePngSize(Buffer.from(artifact.base64, 'base64'))).toEqual({ width: 640, height: 384 });
    }
  });

  it('answers the PNG itself with Accept: image/png', async () => {
    const res = await fetch(endpoint(), {
      method: 'POST',
      headers: json({ authorization: KEY, accept: 'image/png' }),
      body: JSON.stringify({ text_prompts: [{ text: 'x' }] }),
    });
    expect(res.headers.get('content-type')).toBe('image/png');
    expect(res.headers.get('finish-reason')).toBe('SUCCESS');
    expect(decodePngSize(Buffer.from(await res.arrayBuffer()))).toEqual({ width: 512, height: 512 });
  });

  it('refuses missing keys and bad sizes in its Error shape', async () => {
    const missing = await fetch(endpoint(), { method: 'POST', headers: json(), body: '{}' });
    expect(missing.status).toBe(401);
    expectValid(contracts.stabilityError, await missing.json(), 'unauthorized error');
    const badSize = await fetch(endpoint(), {
      method: 'POST',
      headers: json({ authorization: `Bearer ${KEY}` }),
      body: JSON.stringify({ text_prompts: [{ text: 'x' }], width: 500 }),
    });
    expect(badSize.status).toBe(400);
    const body = (await badSize.json()) as { message: string };
    expectValid(contracts.stabilityError, body, 'bad size error');
    expect(body.message).toMatch(/width/);
  });
});

describe('ElevenLabs text-to-speech', () => {
  it('answers decodable MP3 audio whose length follows the text', async () => {
    const text = 'This is a voice over with exactly twelve words in it today.';
    const res = await fetch(`${sim.url}/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM?output_format=mp3_44100_128`, {
      method: 'POST',
      headers: json({ 'xi-api-key': KEY }),
      body: JSON.stringify({ text, model_id: 'eleven_multilingual_v2' }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('audio/mpeg');
    const file = path.join(dir, 'speech.mp3');
    await writeFile(file, Buffer.from(await res.arrayBuffer()));
    const { codec, duration } = await probe(file);
    expect(codec).toBe('mp3');
    expect(duration).toBeGreaterThan(4.5);
    expect(duration).toBeLessThan(6);
  });

  it('answers a missing text with an HTTPValidationError and a wrong key with 401', async () => {
    const invalid = await fetch(`${sim.url}/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM`, { method: 'POST', headers: json({ 'xi-api-key': KEY }), body: '{}' });
    expect(invalid.status).toBe(422);
    const body = (await invalid.json()) as { detail: { loc: string[] }[] };
    expectValid(contracts.elevenLabsValidationError, body, 'validation error');
    expect(body.detail[0]?.loc).toEqual(['body', 'text']);
    const wrong = await fetch(`${sim.url}/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM`, {
      method: 'POST',
      headers: json({ 'xi-api-key': 'nope' }),
      body: '{"text":"a"}',
    });
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as { detail: { status: string } }).detail.status).toBe('invalid_api_key');
  });
});

describe('media file server', () => {
  it('serves files with type and length, and byte ranges', async () => {
    const whole = await fetch(`${sim.url}/media/clip.mp4`);
    expect(whole.status).toBe(200);
    expect(whole.headers.get('content-type')).toBe('video/mp4');
    expect(Number(whole.headers.get('content-length'))).toBe(video.length);
    expect(Buffer.from(await whole.arrayBuffer()).equals(video)).toBe(true);
    const part = await fetch(`${sim.url}/media/clip.mp4`, { headers: { range: 'bytes=100-199' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 100-199/${video.length}`);
    expect(Buffer.from(await part.arrayBuffer()).equals(video.subarray(100, 200))).toBe(true);
    const beyond = await fetch(`${sim.url}/media/clip.mp4`, { headers: { range: `bytes=${video.length}-` } });
    expect(beyond.status).toBe(416);
  });

  it('does not serve files outside its directory', async () => {
    expect((await fetch(`${sim.url}/media/..%2f..%2fetc%2fpasswd`)).status).toBe(404);
    expect((await fetch(`${sim.url}/media/missing.mp4`)).status).toBe(404);
  });
});
