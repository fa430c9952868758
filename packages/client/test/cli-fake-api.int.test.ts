/**
 * `clipline submit` against an API of the test's own (a small HTTP server), for what the real
 * producer cannot be made to do on cue:
 * - Ctrl-C while it is still sending: the videos the server already accepted are queued and will
 *   run, so the CLI prints their ids before it exits 130 (the server accepts two, holds the third);
 * - a video whose events say completed, but whose final read fails: the summary says so, exit 1.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CLI } from './cli-runner.js';
import { json, openStream, problem, sendEvent } from './fake-api.js';

const IDS = ['5d0c9c52-2f57-4a5b-9c55-3b8d0a3c5e11', '6e1dad63-3068-4b6c-8d66-4c9e1b4d6f22'];
let server: http.Server;
let url: string;
let received = 0;
let answered = 0;
/** Serves the `completed but unreadable` video's routes; the submissions' are above it. */
let finalReadFails: ((req: http.IncomingMessage, res: http.ServerResponse) => boolean) | undefined;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    if (finalReadFails?.(req, res)) return;
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
  finalReadFails = (req, res) => {
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
    finalReadFails = undefined;
  }
});
