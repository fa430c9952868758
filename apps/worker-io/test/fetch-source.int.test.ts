import { createReadStream } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, realpath, rename, rm, stat, symlink } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { LocalStorage, PermanentJobError, parseSource } from '@clipline/shared';
import { fetchSource, openCheckedFile, type FetchSettings } from '../src/ingest/fetch-source.js';
import { generateVideo } from '../../../tests/helpers/media.js';

let dir: string;
let video: string;
let server: http.Server;
let base: string;
const requests: string[] = [];
let zerosSent = 0;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'clipline-fetch-'));
  video = (await generateVideo({ path: path.join(dir, 'clip.mp4'), segments: [1, 1] })).path;
  server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    if (req.url === '/clip.mp4') {
      res.writeHead(200, { 'content-type': 'video/mp4' });
      createReadStream(video).pipe(res);
    } else if (req.url === '/sized.mp4') {
      // With its length, in sixteen pieces over about a second: long enough for several progress
      // reports. The last piece follows the one before it closely, as a download's end often
      // does, so it falls inside the report interval: a final report has to be made for it.
      void readFile(video).then(async (bytes) => {
        res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': String(bytes.length) });
        const size = Math.ceil(bytes.length / 16);
        for (let piece = 0; piece < 16 && !res.destroyed; piece += 1) {
          await new Promise((resolve) => setTimeout(resolve, piece === 15 ? 30 : piece === 14 ? 300 : 60));
          res.write(bytes.subarray(piece * size, (piece + 1) * size));
        }
        res.end();
      });
    } else if (req.url === '/untyped') {
      res.writeHead(200);
      createReadStream(video).pipe(res);
    } else if (req.url === '/page') {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html>not a video</html>');
    } else if (req.url === '/lying') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end('<!DOCTYPE html><html><body>sign in first</body></html>');
    } else if (req.url === '/huge') {
      res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': String(10 * 1024 ** 3) });
      res.end();
    } else if (req.url === '/endless') {
      // A video's start (so its first bytes pass as one), then filler without end.
      res.writeHead(200, { 'content-type': 'video/mp4' });
      void readFile(video).then((bytes) => {
        res.write(bytes);
        const chunk = Buffer.alloc(64 * 1024, 1);
        const timer = setInterval(() => res.write(chunk), 1);
        res.on('close', () => clearInterval(timer));
      });
    } else if (req.url === '/stalls') {
      // A video's first bytes, then nothing, with the connection kept open.
      void readFile(video).then((bytes) => {
        res.writeHead(200, { 'content-type': 'video/mp4' });
        res.write(bytes.subarray(0, 64 * 1024));
      });
    } else if (req.url === '/zeros') {
      // 64 MiB of zeros, as octet-stream: counts what it managed to send before the client hung up.
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(64 * 1024);
      let sent = 0;
      const more = () => {
        while (sent < 64 * 1024 ** 2 && !res.destroyed) {
          sent += chunk.length;
          zerosSent = sent;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
        res.end();
      };
      more();
    } else if (req.url === '/loop') {
      res.writeHead(302, { location: '/loop' }).end();
    } else if (req.url === '/broken') {
      res.writeHead(503).end();
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

function settings(overrides: Partial<FetchSettings> = {}): FetchSettings {
  return {
    storage: new LocalStorage(path.join(dir, 'storage')),
    maxBytes: 50 * 1024 * 1024,
    fileRoots: 'any',
    allowPrivateHosts: true,
    downloadTimeoutMs: 10_000,
    ...overrides,
  };
}

async function fetchText(source: string, overrides: Partial<FetchSettings> = {}) {
  const parsed = parseSource(source);
  if (!parsed.ok) throw new Error(parsed.reason);
  return fetchSource(settings(overrides), '7f2b0a8e-1d1c-4c55-9f57-0d5a3c9e1b21', parsed.source);
}

async function failure(source: string, overrides: Partial<FetchSettings> = {}): Promise<Error> {
  return fetchText(source, overrides).then(
    () => new Error('fetch succeeded'),
    (error: Error) => error,
  );
}

describe('fetchSource', () => {
  it('copies a local file into storage, byte for byte', async () => {
    const stored = await fetchText(video);
    expect(stored).toMatchObject({ storageKey: 'videos/7f2b0a8e-1d1c-4c55-9f57-0d5a3c9e1b21/source.mp4', container: 'mp4/mov' });
    const copy = settings().storage.pathOf(stored.storageKey);
    expect(await readFile(copy)).toEqual(await readFile(video));
    expect(stored.sizeBytes).toBe((await stat(video)).size);
  });

  async function download(route: string, videoId: string) {
    const progress: number[] = [];
    const parsed = parseSource(`${base}${route}`);
    if (!parsed.ok) throw new Error(parsed.reason);
    const stored = await fetchSource(settings(), videoId, parsed.source, { onProgress: (fraction) => void progress.push(fraction) });
    expect(await readFile(settings().storage.pathOf(stored.storageKey))).toEqual(await readFile(video));
    return progress;
  }

  it('streams an http download with a Content-Length into storage, reporting rising progress that ends at 1', async () => {
    const progress = await download('/sized.mp4', '7f2b0a8e-1d1c-4c55-9f57-0d5a3c9e1b22');
    // The body takes about a second and reports come at most every 250 ms: more than one.
    expect(progress.length).toBeGreaterThanOrEqual(2);
    for (const fraction of progress) expect(fraction > 0 && fraction <= 1).toBe(true);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(new Set(progress).size).toBe(progress.length);
    expect(progress.at(-1)).toBeGreaterThanOrEqual(0.99);
  });

  it('goes on downloading when a progress report fails (the database away), and handles every such failure', async () => {
    // Each report fails; a failure nobody handles would end the worker process.
    let reports = 0;
    let handled = 0;
    const failingReport = () => {
      reports += 1;
      const failed = Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:5432'));
      const then = failed.then.bind(failed);
      // biome-ignore lint/suspicious/noThenProperty: the test counts who handles the rejection
      failed.then = ((onFulfilled, onRejected) => {
        if (onRejected) handled += 1;
        return then(onFulfilled, onRejected);
      }) as typeof failed.then;
      return failed;
    };
    const parsed = parseSource(`${base}/sized.mp4`);
    if (!parsed.ok) throw new Error(parsed.reason);
    // The last report, made once the file is in place, fails too: the download is kept all the same.
    const hooks = { onProgress: () => failingReport() };
    const stored = await fetchSource(settings(), '7f2b0a8e-1d1c-4c55-9f57-0d5a3c9e1b2a', parsed.source, hooks);
    expect(await readFile(settings().storage.pathOf(stored.storageKey))).toEqual(await readFile(video));
    expect(reports).toBeGreaterThanOrEqual(3);
    expect(handled).toBe(reports);
    // So is a local copy's.
    const copied = await fetchSource(settings(), '7f2b0a8e-1d1c-4c55-9f57-0d5a3c9e1b2b', { kind: 'file', path: video }, hooks);
    expect(copied.sizeBytes).toBe((await stat(video)).size);
  });

  it('streams an http download without a Content-Length, reporting no fraction it cannot know', async () => {
    expect(await download('/clip.mp4', '7f2b0a8e-1d1c-4c55-9f57-0d5a3c9e1b23')).toEqual([]);
  });

  it('accepts a download with no content type when the bytes are a video', async () => {
    expect((await fetchText(`${base}/untyped`)).container).toBe('mp4/mov');
  });

  it.each([
    ['/missing.mp4', /does not exist/, true],
    ['/etc', /not a regular file/, true],
  ])('refuses local source %s', async (file, reason, permanent) => {
    const error = await failure(file);
    expect(error.message).toMatch(reason);
    expect(error instanceof PermanentJobError).toBe(permanent);
  });

  it('refuses local files outside the allowed roots, a link inside one that leads out of it included', async () => {
    const error = await failure(video, { fileRoots: ['/srv/media'] });
    expect(error).toBeInstanceOf(PermanentJobError);
    expect(error.message).toMatch(/outside the directories/);
    const root = path.join(dir, 'allowed');
    await mkdir(root, { recursive: true });
    await symlink(video, path.join(root, 'outside.mp4'));
    const linked = await failure(path.join(root, 'outside.mp4'), { fileRoots: [root] });
    expect(linked).toBeInstanceOf(PermanentJobError);
    expect(linked.message).toBe(`local file ${path.join(root, 'outside.mp4')} is outside the directories sources may be read from (FILE_SOURCE_ROOTS)`);
    await copyFile(video, path.join(root, 'inside.mp4'));
    expect((await fetchText(path.join(root, 'inside.mp4'), { fileRoots: [root] })).sizeBytes).toBe((await stat(video)).size);
    // A root that is itself a link holds what is under its target.
    await symlink(root, path.join(dir, 'linked-root'));
    const viaLink = path.join(dir, 'linked-root', 'inside.mp4');
    expect((await fetchText(viaLink, { fileRoots: [path.join(dir, 'linked-root')] })).sizeBytes).toBe((await stat(video)).size);
  });

  it('reads a local file through the one handle it checked: a folder swapped for a link, a link or a FIFO put in its place, is refused', async () => {
    const root = path.join(dir, 'drop');
    const outside = path.join(dir, 'elsewhere');
    await mkdir(path.join(root, 'sub'), { recursive: true });
    await mkdir(outside, { recursive: true });
    await copyFile(video, path.join(root, 'sub', 'clip.mp4'));
    await copyFile(video, path.join(outside, 'clip.mp4'));
    const checked = await realpath(path.join(root, 'sub', 'clip.mp4'));
    const handle = await openCheckedFile(checked, checked);
    await handle.close();
    // After the check, the folder on the way becomes a link out of the root.
    await rename(path.join(root, 'sub'), path.join(root, 'sub-before'));
    await symlink(outside, path.join(root, 'sub'));
    await expect(openCheckedFile(checked, 'drop/sub/clip.mp4')).rejects.toThrow(
      new PermanentJobError('source file moved while it was being checked: drop/sub/clip.mp4'),
    );
    // The file itself becomes a link.
    await rm(path.join(root, 'sub'));
    await mkdir(path.join(root, 'sub'));
    await symlink(path.join(outside, 'clip.mp4'), checked);
    await expect(openCheckedFile(checked, 'drop/sub/clip.mp4')).rejects.toThrow(
      new PermanentJobError('source file became a link while it was being checked: drop/sub/clip.mp4'),
    );
    // A FIFO: opened without waiting for a writer, then refused as no regular file.
    await rm(checked);
    execFileSync('mkfifo', [checked]);
    const started = Date.now();
    const fifo = await openCheckedFile(checked, checked);
    expect((await fifo.stat()).isFIFO()).toBe(true);
    await fifo.close();
    expect(Date.now() - started).toBeLessThan(2000);
    expect((await failure(checked, { fileRoots: [root] })).message).toBe(`source is not a regular file: ${checked}`);
  });

  it("refuses a stored video's file (every tenant's are kept there), whatever the roots allow", async () => {
    const stored = await fetchText(video);
    const inStorage = settings().storage.pathOf(stored.storageKey);
    const error = await failure(inStorage);
    expect(error).toBeInstanceOf(PermanentJobError);
    expect(error.message).toBe(`local file ${inStorage} is one of the stored videos' files (the storage folder's videos/): submit the original file`);
    // Nor through a link to it.
    await symlink(inStorage, path.join(dir, 'to-storage.mp4'));
    expect((await failure(path.join(dir, 'to-storage.mp4'))).message).toMatch(/is one of the stored videos' files/);
  });

  it('refuses sources above the size limit without reading them', async () => {
    expect((await failure(video, { maxBytes: 1000 })).message).toMatch(/more than the 0\.0 MiB limit/);
    expect((await failure(`${base}/huge`)).message).toMatch(/10\.0 GiB, more than/);
    const endless = await failure(`${base}/endless`, { maxBytes: 2 * 1024 * 1024 });
    expect(endless).toBeInstanceOf(PermanentJobError);
    expect(endless.message).toMatch(/download exceeds the 2\.0 MiB limit/);
  });

  it('refuses content that is not a video, whatever the server claims', async () => {
    expect((await failure(`${base}/page`)).message).toBe('the server sent "text/html", not a video');
    expect((await failure(`${base}/lying`)).message).toBe('the content is an HTML page, not a video');
  });

  it('fails 404 and a redirect loop permanently, and 503 transiently', async () => {
    const missing = await failure(`${base}/nothing.mp4`);
    expect(missing).toBeInstanceOf(PermanentJobError);
    expect(missing.message).toMatch(/HTTP 404/);
    const loop = await failure(`${base}/loop`);
    expect(loop).toBeInstanceOf(PermanentJobError);
    expect(loop.message).toMatch(/^download of http:\/\/127\.0\.0\.1:\d+\/loop failed: Redirected \d+ times\. Aborting\.$/);
    const broken = await failure(`${base}/broken`);
    expect(broken).not.toBeInstanceOf(PermanentJobError);
    expect(broken.message).toMatch(/HTTP 503/);
  });

  it('refuses private addresses unless allowed', async () => {
    const before = requests.length;
    const error = await failure(`${base}/clip.mp4`, { allowPrivateHosts: false });
    expect(error).toBeInstanceOf(PermanentJobError);
    expect(error.message).toMatch(/refused: 127\.0\.0\.1:\d+ is a loopback address/);
    const byName = await failure(`${base.replace('127.0.0.1', 'localhost')}/clip.mp4`, { allowPrivateHosts: false });
    expect(byName.message).toMatch(/refused: localhost:\d+ is a localhost name/);
    expect(requests.length).toBe(before);
  });

  it('gives up on a server that stops sending, after the idle timeout, to be tried again', async () => {
    const started = Date.now();
    const stalled = await failure(`${base}/stalls`, { idleTimeoutMs: 500 });
    expect(stalled).not.toBeInstanceOf(PermanentJobError);
    expect(stalled.message).toMatch(/sent nothing for 0\.5 s/);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('refuses bytes that are not a video as soon as their start is in, without downloading the rest', async () => {
    const error = await failure(`${base}/zeros`, { maxBytes: 1024 ** 3 });
    expect(error).toBeInstanceOf(PermanentJobError);
    expect(error.message).toBe('the content is not a recognised video container');
    expect(zerosSent).toBeLessThan(16 * 1024 ** 2);
  });

  it("names a source in its errors without its query, which may hold a signed URL's token", async () => {
    const error = await failure(`${base}/nothing.mp4?X-Amz-Signature=secret-token&X-Amz-Credential=key`);
    expect(error.message).toMatch(/\/nothing\.mp4\?… failed: HTTP 404/);
    expect(error.message).not.toMatch(/secret-token|X-Amz/);
  });

  it('leaves no partial file behind after a failed download', async () => {
    const videoDir = settings().storage.pathOf('videos/7f2b0a8e-1d1c-4c55-9f57-0d5a3c9e1b21');
    const error = await failure(`${base}/endless`, { maxBytes: 1024 * 1024 });
    expect(error.message).toMatch(/download exceeds the 1\.0 MiB limit/);
    const left = await readdir(videoDir).catch(() => []);
    expect(left.filter((name) => name.endsWith('.part'))).toEqual([]);
  });
});
