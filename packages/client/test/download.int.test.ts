/**
 * Results on disk: `clipline download` and `clipline submit --wait --download` against the real
 * producer (in this process) and the real worker processes, with a video made by ffmpeg.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, stat, truncate } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { jest } from '@jest/globals';
import { DEV_API_KEY } from '@clipline/shared';
import { ClipLineApiError, createClient, type Clip, type ClipLineClient, type Video } from '../src/index.js';
import { ffprobeDuration, generateVideo } from '../../../tests/helpers/media.js';
import { freePort, startApp, stopApp, waitForHttp, type RunningApp } from '../../../tests/helpers/processes.js';
import type { TestEnvironment } from '../../../tests/helpers/services.js';
import { CLI, cliRunner } from './cli-runner.js';
import { producerUnderTest, type ProducerUnderTest, type RunningProducer } from './producer-fixture.js';

jest.setTimeout(120_000);

const UNKNOWN_ID = '5d0c9c52-2f57-4a5b-9c55-3b8d0a3c5e11';

let fixture: ProducerUnderTest;
let env: TestEnvironment;
let running: RunningProducer;
let api: ClipLineClient;
const workers: RunningApp[] = [];
/** The video `submit --wait --download` completed; the other tests download it again. */
let completed: Video;

const clipline = cliRunner(() => ({
  cwd: env.config.storageDir,
  env: { CLIPLINE_URL: running.url, CLIPLINE_API_KEY: DEV_API_KEY, DATABASE_URL: env.config.databaseUrl, DATABASE_SCHEMA: env.config.databaseSchema },
}));

/** Every file below `folder`, relative to it, sorted. */
async function filesUnder(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(folder, path.join(entry.parentPath, entry.name)))
    .sort();
}

/** What the producer serves for a clip file: its Content-Length, read with a HEAD request. */
async function servedLength(apiPath: string): Promise<number> {
  const response = await fetch(`${running.url}${apiPath}`, { method: 'HEAD', headers: { authorization: `Bearer ${DEV_API_KEY}` } });
  expect(response.status).toBe(200);
  return Number(response.headers.get('content-length'));
}

/** The clip, thumbnail and voice-over files of a completed video, by its clips. */
function resultFiles(video: Video): string[] {
  const names: string[] = [];
  for (const clip of video.clips ?? []) {
    if (clip.url) names.push(`clip-${clip.index}.mp4`);
    if (clip.thumbnailUrl) names.push(`clip-${clip.index}-thumbnail.jpg`);
    if (clip.voiceoverUrl) names.push(`clip-${clip.index}-voiceover.mp3`);
  }
  return names.sort();
}

/** The files a completed video's folder must hold: its results, video.json and the record of their versions. */
function expectedFiles(video: Video): string[] {
  return [...resultFiles(video), 'video.json', '.clipline-files.json'].sort();
}

/** Every clip on disk is whole: the served size, and a duration ffprobe agrees with. */
async function expectCompleteClips(folder: string, clips: readonly Clip[]): Promise<void> {
  for (const clip of clips) {
    const file = path.join(folder, `clip-${clip.index}.mp4`);
    expect((await stat(file)).size).toBe(await servedLength(clip.url!));
    expect(Math.abs((await ffprobeDuration(file)) - clip.durationSeconds!)).toBeLessThan(0.15);
    const thumbnail = path.join(folder, `clip-${clip.index}-thumbnail.jpg`);
    expect((await stat(thumbnail)).size).toBe(await servedLength(clip.thumbnailUrl!));
    // A JPEG starts with its SOI marker: the extension was chosen from what was served.
    expect((await readFile(thumbnail)).subarray(0, 2).toString('hex')).toBe('ffd8');
  }
}

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first with "npx tsc -b"`);
  fixture = await producerUnderTest();
  ({ env, running, api } = fixture);
  // Clip downloads are refused under a storage path with a dot segment (.data/storage) until the
  // producer's fix lands; the test storage (a mkdtemp folder) has none, and this says so loudly.
  if (env.config.storageDir.split(path.sep).some((part) => part.startsWith('.'))) {
    throw new Error(`storage dir ${env.config.storageDir} has a dot segment: clip downloads would answer 403`);
  }
  const [ioPort, cpuPort] = await Promise.all([freePort(), freePort()]);
  const appEnv = { ...env.env, HOST: '127.0.0.1', WORKER_IO_METRICS_PORT: String(ioPort), WORKER_CPU_METRICS_PORT: String(cpuPort), CPU_POOL_THREADS: '1' };
  workers.push(startApp('worker-io', appEnv), startApp('worker-cpu', appEnv));
  await Promise.all([waitForHttp(`http://127.0.0.1:${ioPort}/healthz`, workers[0]!), waitForHttp(`http://127.0.0.1:${cpuPort}/healthz`, workers[1]!)]);
});

afterAll(async () => {
  await Promise.all(workers.map((worker) => stopApp(worker)));
  await fixture?.close();
});

describe('submit --wait --download', () => {
  it('saves each completed video under <dir>/<id>/ with its clips, thumbnails and video.json, and no .part file', async () => {
    const media = path.join(env.config.storageDir, 'media');
    await mkdir(media, { recursive: true });
    // Four 2 s scenes: long enough for two clips of the default 5-second minimum.
    const source = await generateVideo({ path: path.join(media, 'talk.mp4'), segments: [2, 2, 2, 2], width: 320, height: 180 });

    const run = await clipline(['submit', 'media/talk.mp4', '--wait', '--clips', '2', '--download', 'results']);
    expect(run.stderr).toMatch(/^\[[0-9a-f]{8}\] talk\.mp4 completed 100%$/m);
    expect(run.code).toBe(0);
    const id = run.stdout.match(/^([0-9a-f-]{36}) +talk\.mp4 +completed/m)?.[1];
    expect(id).toBeDefined();
    completed = await api.getVideo(id!);
    expect(completed).toMatchObject({ status: 'completed', source: source.path });
    const clips = completed.clips ?? [];
    expect(clips.length).toBeGreaterThan(0);
    expect(clips.every((clip) => clip.status === 'rendered')).toBe(true);

    const folder = path.join(env.config.storageDir, 'results', id!);
    expect(run.stdout).toContain(`\n${id}: saved ${resultFiles(completed).length} files, `);
    expect(run.stdout).toContain(` to ${folder}\n`);
    // A log (not a terminal) gets a line per finished file, then the saved state.
    expect(run.stderr).toMatch(/^\[[0-9a-f]{8}\] talk\.mp4 downloading \d+% \(clip-0\.mp4 [\d.]+ [KM]?B\)$/m);
    expect(run.stderr).toMatch(/^\[[0-9a-f]{8}\] talk\.mp4 downloaded 100% \(\d+ files, [\d.]+ [KM]?B\)$/m);

    expect(await filesUnder(path.join(env.config.storageDir, 'results'))).toEqual(expectedFiles(completed).map((name) => path.join(id!, name)));
    await expectCompleteClips(folder, clips);
    const saved = JSON.parse(await readFile(path.join(folder, 'video.json'), 'utf8')) as Video;
    expect(saved).toMatchObject({ id, status: 'completed', clips: clips.map((clip) => expect.objectContaining({ id: clip.id, url: clip.url })) });
  });
});

describe('download', () => {
  it('saves a completed video into --out (relative to the working directory) with complete files', async () => {
    expect(completed).toBeDefined();
    const run = await clipline(['download', completed.id, '--out', 'again']);
    expect(run.code).toBe(0);
    const folder = path.join(env.config.storageDir, 'again', completed.id);
    expect(run.stdout).toMatch(new RegExp(`^${completed.id}  ${folder}  ${resultFiles(completed).length} files, [\\d.]+ [KM]?B\\n$`));
    expect(await filesUnder(path.join(env.config.storageDir, 'again'))).toEqual(expectedFiles(completed).map((name) => path.join(completed.id, name)));
    await expectCompleteClips(folder, completed.clips ?? []);
  });

  it('defaults to the current directory, and reports JSON with every file and its size', async () => {
    const cwd = path.join(env.config.storageDir, 'cwd');
    await mkdir(cwd);
    const run = await clipline(['download', completed.id.toUpperCase(), '--json'], { cwd });
    expect(run.code).toBe(0);
    const [report] = JSON.parse(run.stdout) as { id: string; folder: string; files: { path: string; bytes: number }[]; bytes: number }[];
    expect(report).toMatchObject({ id: completed.id, folder: path.join(cwd, completed.id) });
    expect(report!.files.map((file) => path.basename(file.path)).sort()).toEqual(resultFiles(completed));
    for (const file of report!.files) expect((await stat(file.path)).size).toBe(file.bytes);
    expect(report!.bytes).toBe(report!.files.reduce((sum, file) => sum + file.bytes, 0));
  });

  it('downloading again fetches only what changed: a file the server still has is kept as it is, one changed on disk is fetched again', async () => {
    const out = path.join(env.config.storageDir, 'twice');
    const folder = path.join(out, completed.id);
    const count = resultFiles(completed).length;
    expect((await clipline(['download', completed.id, '--out', out])).code).toBe(0);
    const inodes = async () => Promise.all(resultFiles(completed).map(async (name) => (await stat(path.join(folder, name))).ino));
    const first = await inodes();
    const again = await clipline(['download', completed.id, '--out', out, '--json']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toEqual([expect.objectContaining({ id: completed.id, unchangedFiles: count })]);
    // Kept, not written again: a new file would have come in through a rename, under another inode.
    expect(await inodes()).toEqual(first);
    const clip = path.join(folder, 'clip-0.mp4');
    await truncate(clip, 1000);
    const third = await clipline(['download', completed.id, '--out', out]);
    expect(third.stdout).toContain(`${count} files, `);
    expect(third.stdout).toContain(`, ${count - 1} already up to date\n`);
    await expectCompleteClips(folder, completed.clips ?? []);
    expect(await filesUnder(out)).toEqual(expectedFiles(completed).map((name) => path.join(completed.id, name)));
  });

  it('refuses a video that is not completed, with a message and exit 1, and writes nothing for it', async () => {
    // Delayed an hour: it stays queued for the whole test.
    const { id } = await api.submitVideo({ source: '/srv/media/later.mp4', delaySeconds: 3600 });
    const out = path.join(env.config.storageDir, 'refused');
    const run = await clipline(['download', id, '--out', out]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(`clipline: video ${id} is queued (0%), not completed: download it once it completes (follow it with "clipline status ${id}")\n`);
    expect(existsSync(path.join(out, id))).toBe(false);

    await api.cancelVideo(id);
    const cancelled = await clipline(['download', id, '--out', out]);
    expect(cancelled.code).toBe(1);
    expect(cancelled.stderr).toBe(`clipline: video ${id} was cancelled: it has no results to download\n`);
  });

  it("says an unknown video does not exist (or is another tenant's), exit 1, and still saves the others", async () => {
    const out = path.join(env.config.storageDir, 'mixed');
    const run = await clipline(['download', UNKNOWN_ID, completed.id, '--out', out]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`^clipline: video ${UNKNOWN_ID} does not exist \\(or belongs to another tenant\\)\\n`));
    expect(run.stdout).toMatch(new RegExp(`^${completed.id}  ${path.join(out, completed.id)}  `));
    expect(await filesUnder(out)).toEqual(expectedFiles(completed).map((name) => path.join(completed.id, name)));
  });

  it.each([
    [['download'], /download needs at least one video id\nRun "clipline download --help"/],
    [['download', UNKNOWN_ID, ' '], /a video id must not be empty/],
    [['download', UNKNOWN_ID, '--out'], /option --out needs a value/],
    [['download', UNKNOWN_ID, '--out', 'media/talk.mp4'], /--out .*media\/talk\.mp4 is not a folder/],
    [['submit', 'media/talk.mp4', '--download', 'results'], /--download needs --wait/],
  ])('%j is a usage error (exit 2)', async (args, message) => {
    const run = await clipline(args);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(message);
    expect(run.stdout).toBe('');
  });
});

describe('client.downloadFile', () => {
  it('leaves neither the file nor its .part behind when the download is aborted mid-body', async () => {
    const clip = completed.clips![0]!;
    const folder = path.join(env.config.storageDir, 'aborted');
    await mkdir(folder);
    const destination = path.join(folder, 'clip.mp4');
    const controller = new AbortController();
    let chunks = 0;
    const download = api.downloadFile(clip.url!, destination, {
      signal: controller.signal,
      onProgress: () => {
        chunks += 1;
        controller.abort(new Error('stop after the first chunk'));
      },
    });
    await expect(download).rejects.toThrow('stop after the first chunk');
    expect(chunks).toBe(1);
    expect(await readdir(folder)).toEqual([]);
  });

  it("takes a clip whose connection broke up again where it broke, with the producer's own Range and If-Range support", async () => {
    const clip = completed.clips![0]!;
    const whole = await servedLength(clip.url!);
    // A proxy in front of the producer that cuts the first download's connection a third of the way in.
    const upstream = new URL(running.url);
    /** Connections that asked for the clip: the cut one, then the retry's. */
    let clipConnections = 0;
    let cut = false;
    const proxy = net.createServer((client) => {
      const server = net.connect(Number(upstream.port), upstream.hostname);
      let head = '';
      let sent = 0;
      client.on('data', (chunk: Buffer) => {
        const asked = head.startsWith(`GET ${clip.url}`);
        head += chunk.toString('latin1');
        if (!asked && head.startsWith(`GET ${clip.url}`)) clipConnections += 1;
        server.write(chunk);
      });
      server.on('data', (chunk: Buffer) => {
        const cutThis = !cut && head.startsWith(`GET ${clip.url}`);
        if (cutThis && sent + chunk.length > whole / 3) {
          cut = true;
          client.write(chunk.subarray(0, Math.max(0, Math.floor(whole / 3) - sent)), () => client.destroy());
          server.destroy();
          return;
        }
        sent += chunk.length;
        client.write(chunk);
      });
      client.on('error', () => server.destroy());
      server.on('error', () => client.destroy());
      client.on('close', () => server.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      const proxied = createClient({ baseUrl: `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`, apiKey: DEV_API_KEY });
      const folder = path.join(env.config.storageDir, 'resumed');
      await mkdir(folder);
      const saved = await proxied.downloadFile(clip.url!, path.join(folder, 'clip.mp4'));
      expect(cut).toBe(true);
      expect(saved.bytes).toBe(whole);
      expect(await readdir(folder)).toEqual(['clip.mp4']);
      const direct = path.join(folder, 'direct.mp4');
      await api.downloadFile(clip.url!, direct);
      expect((await readFile(path.join(folder, 'clip.mp4'))).equals(await readFile(direct))).toBe(true);
      // The Range / If-Range exchange itself is checked against a server of the tests' own
      // (client-protocol.int.test.ts); here, that a cut connection to the real producer still
      // gives the whole clip, byte for byte, through a second connection.
      expect(clipConnections).toBe(2);
    } finally {
      proxy.close();
    }
  });

  it('rejects with the 404 of a clip that does not exist, writing nothing', async () => {
    const folder = path.join(env.config.storageDir, 'missing');
    await mkdir(folder);
    const download = api.downloadFile(`/v1/videos/${completed.id}/clips/${UNKNOWN_ID}/file`, path.join(folder, 'clip.mp4'));
    await expect(download).rejects.toBeInstanceOf(ClipLineApiError);
    await expect(download).rejects.toMatchObject({ status: 404 });
    expect(await readdir(folder)).toEqual([]);
  });

  it('refuses a path that would send the key to another host', async () => {
    const destination = path.join(env.config.storageDir, 'elsewhere.mp4');
    await expect(api.downloadFile('https://example.com/v1/x', destination)).rejects.toThrow(/must be an API path starting with "\/"/);
    await expect(api.downloadFile('//example.com/v1/x', destination)).rejects.toThrow(TypeError);
    expect(existsSync(destination)).toBe(false);
  });
});
