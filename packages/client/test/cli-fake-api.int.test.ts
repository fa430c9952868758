/**
 * `clipline submit` against an API of the test's own (a small HTTP server), for what the real
 * producer cannot be made to do on cue:
 * - Ctrl-C while it is still sending: the videos the server already accepted are queued and will
 *   run, so the CLI prints their ids before it exits 130 (the server accepts two, holds the third);
 * - a video whose events say completed, but whose final read fails: the summary says so, exit 1;
 * - a download stopped by SIGTERM (a `kill`, `timeout`) midway: no partial file, exit 143;
 * - a dozen videos followed at once: no warning about listeners on the interrupt signal.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { CLI } from './cli-runner.js';
import { json, openStream, problem, sendEvent, videoBody } from './fake-api.js';

const IDS = ['5d0c9c52-2f57-4a5b-9c55-3b8d0a3c5e11', '6e1dad63-3068-4b6c-8d66-4c9e1b4d6f22'];
let server: http.Server;
let url: string;
let received = 0;
let answered = 0;
/** A test's own routes, tried before the submissions' (true: answered). */
let override: ((req: http.IncomingMessage, res: http.ServerResponse) => boolean) | undefined;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    if (override?.(req, res)) return;
    if (req.method !== 'POST' || req.url !== '/v1/videos') {
      res.writeHead(404).end();
      return;
    }
    received++;
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const source = (JSON.parse(body) as { source: string }).source;
      const index = ['https://media.example/a.mp4', 'https://media.example/b.mp4'].indexOf(source);
      // The third one is held: the user presses Ctrl-C while it is on its way.
      if (index < 0) return;
      res.writeHead(202, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: IDS[index], status: 'queued', links: { self: `/v1/videos/${IDS[index]}` } }));
      answered++;
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  server.close();
});

it('prints the ids of the videos already accepted, says how many were, and exits 130', async () => {
  const child = spawn(process.execPath, [CLI, 'submit', 'https://media.example/a.mp4', 'https://media.example/b.mp4', 'https://media.example/c.mp4'], {
    env: { PATH: process.env.PATH ?? '', HOME: '/tmp', CLIPLINE_URL: url, CLIPLINE_API_KEY: 'k' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const closed = once(child, 'close');
  const deadline = Date.now() + 10_000;
  while ((received < 3 || answered < 2) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  expect(received).toBe(3);
  // Let the two answers reach the CLI before the interrupt (the third is never answered, so waiting longer changes nothing else).
  await new Promise((resolve) => setTimeout(resolve, 1000));
  child.kill('SIGINT');
  const [code] = await closed;
  expect(code).toBe(130);
  expect(stdout.trim().split('\n').sort()).toEqual([`${IDS[0]}  https://media.example/a.mp4`, `${IDS[1]}  https://media.example/b.mp4`].sort());
  expect(stderr).toMatch(/interrupted: 2 of 3 submitted/);
});

it('says a completed video whose results could not be read, and exits 1', async () => {
  const id = '7f2ebe74-4179-4c7d-9e77-5daf2c5e7a33';
  override = (req, res) => {
    if (req.method === 'POST') {
      req.resume();
      json(res, 202, { id, status: 'queued', links: { self: `/v1/videos/${id}` } });
      return true;
    }
    if (req.url === `/v1/videos/${id}/events`) {
      openStream(res);
      sendEvent(res, id, 1, 'completed', 'completed', 100);
      res.end();
      return true;
    }
    if (req.url === `/v1/videos/${id}`) {
      json(res, 500, problem(500, 'Internal Server Error', 'the database broke'));
      return true;
    }
    return false;
  };
  try {
    const child = spawn(process.execPath, [CLI, 'submit', '--wait', 'https://media.example/d.mp4'], {
      env: { PATH: process.env.PATH ?? '', HOME: '/tmp', CLIPLINE_URL: url, CLIPLINE_API_KEY: 'k' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const [code] = await once(child, 'close');
    expect(stdout).toContain(`${id}: completed, but reading its results failed: the database broke (500 Internal Server Error)`);
    expect(code).toBe(1);
  } finally {
    override = undefined;
  }
});

/** The CLI with `args` against the fake API, its output collected. */
function cli(args: string[]) {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: '/tmp', CLIPLINE_URL: url, CLIPLINE_API_KEY: 'k' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = { stdout: '', stderr: '' };
  child.stdout.on('data', (chunk: Buffer) => (output.stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output.stderr += chunk.toString()));
  return { child, output, closed: once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]> };
}

it('stops a download on SIGTERM as on Ctrl-C: no partial file is left, and it exits 143 (its log line said waiting, not queued)', async () => {
  const id = '8a3fcf85-5280-4d8e-8f88-6e3d3b6f8b44';
  const clipPath = `/v1/videos/${id}/clips/c0/file`;
  const held: http.ServerResponse[] = [];
  override = (req, res) => {
    if (req.url === `/v1/videos/${id}`) {
      json(res, 200, {
        ...videoBody(id, 'completed', 100),
        clips: [{ id: 'c0', index: 0, status: 'rendered', url: clipPath, thumbnailUrl: null, voiceoverUrl: null }],
      });
      return true;
    }
    if (req.url === clipPath) {
      // Half of the file, then nothing more: the download is under way when the signal comes.
      res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': String(2 * 65_536) });
      res.write(Buffer.alloc(65_536, 1));
      held.push(res);
      return true;
    }
    return false;
  };
  const out = await mkdtemp(path.join(os.tmpdir(), 'clipline-sigterm-'));
  try {
    const { child, output, closed } = cli(['download', id, '--out', out]);
    const folder = path.join(out, id);
    const deadline = Date.now() + 10_000;
    while (!(await readdir(folder).catch(() => [] as string[])).some((name) => name.endsWith('.part')) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(await readdir(folder)).toEqual([expect.stringMatching(/^clip-0\.mp4\..*part$/)]);
    child.kill('SIGTERM');
    const [code] = await closed;
    expect({ code, files: await readdir(folder), stderr: output.stderr }).toEqual({ code: 143, files: [], stderr: expect.stringMatching(/interrupted/) });
    // A log (stderr is no terminal here) starts the completed video's row as waiting for its download, not as queued.
    expect(output.stderr).toMatch(/^\[8a3fcf85\] .* waiting 0%$/m);
    expect(output.stderr).not.toContain('queued');
  } finally {
    for (const res of held) res.destroy();
    override = undefined;
    await rm(out, { recursive: true, force: true });
  }
});

it('follows a dozen videos at once without a warning about listeners', async () => {
  const ids = Array.from({ length: 12 }, (_, index) => `9b4e0d96-6391-4f9e-9a99-7f4e${String(index).padStart(8, '0')}`);
  let next = 0;
  override = (req, res) => {
    if (req.method === 'POST') {
      req.resume();
      const id = ids[next++ % ids.length]!;
      json(res, 202, { id, status: 'queued', links: { self: `/v1/videos/${id}` } });
      return true;
    }
    const id = ids.find((candidate) => req.url?.startsWith(`/v1/videos/${candidate}`));
    if (!id) return false;
    if (req.url?.endsWith('/events')) {
      openStream(res);
      // Each stream stays open a moment, so all twelve are followed together.
      setTimeout(() => {
        sendEvent(res, id, 1, 'completed', 'completed', 100);
        res.end();
      }, 500);
      return true;
    }
    json(res, 200, videoBody(id, 'completed', 100));
    return true;
  };
  try {
    const { output, closed } = cli(['submit', '--wait', ...ids.map((_, index) => `https://media.example/many-${index}.mp4`)]);
    const [code] = await closed;
    expect({ code, warnings: output.stderr.split('\n').filter((line) => /Warning/.test(line)) }).toEqual({ code: 0, warnings: [] });
  } finally {
    override = undefined;
  }
});
