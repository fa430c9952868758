/**
 * The operator's dashboard and the API docs in a real browser (Debian's chromium driven by
 * playwright-core), over the four real processes and the upstream simulator: the admin sees live
 * numbers and charts, opens a video's flow in Bull Board, retries a failed job from the overview
 * and sees it complete and audited; the viewer finds nothing to act with. Screenshots go to
 * test-results/ for review.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Queue } from 'bullmq';
import { chromium, type Browser, type Page } from 'playwright-core';
import { DEV_API_KEY, DEV_DASHBOARD_PASSWORD, DEV_DASHBOARD_USER, pipelineQueue, syncQueue, videoJobId } from '@clipline/shared';
import { createUpstreamSimulator } from '../../infra/upstream-sim/src/index.js';
import { generateVideo } from '../helpers/media.js';
import { freePort, startApp, stopApp, waitForHttp, type AppName, type RunningApp } from '../helpers/processes.js';
import { connectRedis, createTestEnvironment, waitFor, type TestEnvironment } from '../helpers/services.js';

import { jest } from '@jest/globals';

jest.setTimeout(300_000);

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'];
const SCREENSHOTS = path.resolve(import.meta.dirname ?? '.', '../../test-results');
const VIEWER = { username: 'watcher', password: 'viewer-password-for-the-browser' };
const ADMIN = { username: DEV_DASHBOARD_USER, password: DEV_DASHBOARD_PASSWORD };

let env: TestEnvironment;
let appEnv: Record<string, string>;
let producerUrl: string;
let dashboardUrl: string;
let browser: Browser;
let videoId: string;
const apps = new Map<AppName, RunningApp>();
const redis = connectRedis();
let simulator: Awaited<ReturnType<typeof createUpstreamSimulator>> | undefined;

async function start(name: AppName): Promise<void> {
  const app = startApp(name, appEnv);
  apps.set(name, app);
  const health: Record<AppName, string> = {
    producer: `${producerUrl}/readyz`,
    dashboard: `${dashboardUrl}/healthz`,
    'worker-io': `http://127.0.0.1:${appEnv.WORKER_IO_METRICS_PORT}/healthz`,
    'worker-cpu': `http://127.0.0.1:${appEnv.WORKER_CPU_METRICS_PORT}/healthz`,
  };
  await waitForHttp(health[name], app, 30_000);
}

async function api(method: string, route: string, body?: unknown): Promise<{ status: number; body: Record<string, any> }> {
  const res = await fetch(`${producerUrl}${route}`, {
    method,
    headers: { authorization: `Bearer ${DEV_API_KEY}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json().catch(() => ({}))) as Record<string, any> };
}

async function signedIn(credentials: { username: string; password: string }): Promise<Page> {
  const context = await browser.newContext({ httpCredentials: credentials, viewport: { width: 1400, height: 1000 } });
  const page = await context.newPage();
  await page.goto(`${dashboardUrl}/`);
  await page.waitForSelector('body[data-loaded="true"]', { timeout: 15_000 });
  return page;
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no chromium at ${CHROMIUM}: apt-get install chromium (as .ci/run does), or set CHROMIUM_PATH`);
  await mkdir(SCREENSHOTS, { recursive: true });
  env = await createTestEnvironment({ LOG_LEVEL: 'warn' });
  const [port, dashboardPort, ioPort, cpuPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  simulator = await createUpstreamSimulator({ seed: 11 });
  appEnv = {
    ...env.env,
    HOST: '127.0.0.1',
    PORT: String(port),
    DASHBOARD_PORT: String(dashboardPort),
    WORKER_IO_METRICS_PORT: String(ioPort),
    WORKER_CPU_METRICS_PORT: String(cpuPort),
    CPU_POOL_THREADS: '1',
    DASHBOARD_VIEWER_USER: VIEWER.username,
    DASHBOARD_VIEWER_PASSWORD: VIEWER.password,
    // A provider failure fails the job at once instead of waiting for the provider to come back.
    PROVIDER_OUTAGE_MAX_SECONDS: '0',
    UPSTREAM_SIM_URL: simulator.url,
  };
  producerUrl = `http://127.0.0.1:${port}`;
  dashboardUrl = `http://127.0.0.1:${dashboardPort}`;
  const [, launched] = await Promise.all([
    Promise.all((['producer', 'worker-io', 'worker-cpu', 'dashboard'] as const).map(start)),
    chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS }),
  ]);
  browser = launched;
});

afterAll(async () => {
  await browser?.close();
  await Promise.all([...apps.values()].map((app) => stopApp(app, 'SIGKILL')));
  await simulator?.close();
  redis.disconnect();
  await env?.cleanup();
});

describe('the admin in a browser', () => {
  it('sees live numbers and charts after a video is submitted, and its flow in Bull Board', async () => {
    const video = await generateVideo({ path: path.join(env.config.storageDir, 'browser.mp4'), segments: [1.5, 1.5], width: 320, height: 180, fps: 15 });
    const submitted = await api('POST', '/v1/videos', { source: video.path, title: 'browser', youtubeId: 'dQw4w9WgXcQ', options: { clipCount: 1 } });
    expect(submitted.status).toBe(202);
    videoId = submitted.body.id;
    const page = await signedIn(ADMIN);
    // Live: the page's own 2 s poll brings the video to completed without a reload.
    await page.waitForFunction(() => document.querySelector('[data-status="completed"]')?.textContent === '1', undefined, { timeout: 240_000 });
    await page.waitForFunction(() => Number(document.querySelector('tr[data-queue="ingest"] td[data-count="0"]')?.textContent) >= 0);
    expect(await page.locator('#queue-charts .uplot').count()).toBeGreaterThanOrEqual(8);
    expect(await page.locator('#backlog-chart .uplot canvas').count()).toBe(1);
    expect(await page.locator('tr[data-queue] td.workers').filter({ hasText: ':' }).count()).toBeGreaterThan(0);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'overview-admin.png'), fullPage: true });

    await page.click('#bull-board-link');
    await page.waitForURL(/\/queue\/pipeline$/);
    await page.goto(`${dashboardUrl}/queue/${pipelineQueue.name}/${videoJobId(videoId, 'pipeline')}`);
    await page.getByText(videoJobId(videoId, 'pipeline')).first().waitFor({ timeout: 15_000 });
    // The flow's tree: the parent and its steps, drawn once Bull Board has loaded them.
    await page.getByText('Loading the job flow').waitFor({ state: 'detached', timeout: 15_000 });
    await page.getByText('ingest-video').first().waitFor({ timeout: 15_000 });
    await page.screenshot({ path: path.join(SCREENSHOTS, 'bull-board-flow.png'), fullPage: true });
    await page.context().close();
  });

  it('retries a failed job from the overview, sees it complete and the audit row', async () => {
    const sync = new Queue(syncQueue.name, { connection: redis, prefix: env.config.queuePrefix });
    try {
      // YouTube answers 503: a refresh of the linked video's metadata fails (one attempt).
      simulator?.configure({ endpoints: { 'youtube.videos.list': { errorRate: 1, errorStatus: 503 } } });
      const job = await sync.add('refresh-metadata', { videoId }, { jobId: `${videoId}-browser-refresh`, attempts: 1 });
      await waitFor(async () => ((await job.getState()) === 'failed' ? true : undefined), 30_000, 'the refresh to fail');
      simulator?.configure({ endpoints: { 'youtube.videos.list': { errorRate: 0 } } });

      const page = await signedIn(ADMIN);
      const failure = page.locator('tr[data-failure-queue="sync"]');
      await failure.waitFor({ timeout: 10_000 });
      await failure.locator('button[data-action="retry-failed"]').click();
      await page.locator('#notice').filter({ hasText: 'retry-failed on sync: 1 job(s)' }).waitFor({ timeout: 10_000 });
      await waitFor(async () => ((await job.getState()) === 'completed' ? true : undefined), 30_000, 'the retried refresh to complete');
      const audit = page.locator('tr[data-audit-action="retry-failed"]').first();
      await audit.waitFor({ timeout: 10_000 });
      expect(await audit.textContent()).toContain(`${ADMIN.username} (dashboard)`);
      expect(await audit.locator('[data-audit-outcome]').textContent()).toBe('done');
      await page.waitForFunction(() => !document.querySelector('tr[data-failure-queue="sync"]'), undefined, { timeout: 10_000 });
      await page.screenshot({ path: path.join(SCREENSHOTS, 'overview-after-retry.png'), fullPage: true });
      await page.context().close();
    } finally {
      await sync.close();
    }
  });
});

describe('the viewer in a browser', () => {
  it('finds no button to act with, and the server refuses its actions with 403', async () => {
    const page = await signedIn(VIEWER);
    expect(await page.locator('body').getAttribute('data-role')).toBe('viewer');
    expect(await page.locator('tr[data-queue]').count()).toBeGreaterThan(0);
    expect(await page.locator('button[data-action]').count()).toBe(0);
    const statuses = await page.evaluate(async () => {
      const post = (path: string, body: object) =>
        fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then((res) => res.status);
      return [await post('/overview/queues/sync/actions', { action: 'pause' }), await post('/api/queues/sync/pause', {})];
    });
    expect(statuses).toEqual([403, 403]);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'overview-viewer.png'), fullPage: true });
    await page.context().close();
  });
});

describe('the API docs in a browser', () => {
  it('renders the OpenAPI document with Swagger UI from this origin', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
    const page = await context.newPage();
    const foreign: string[] = [];
    page.on('request', (req) => {
      if (!req.url().startsWith(producerUrl) && !req.url().startsWith('data:')) foreign.push(req.url());
    });
    await page.goto(`${producerUrl}/docs`);
    await page.locator('.opblock-summary-path', { hasText: '/v1/videos' }).first().waitFor({ timeout: 15_000 });
    expect(await page.locator('.opblock-summary-path', { hasText: '/v1/admin/queues/{queue}/failed:retry' }).count()).toBe(1);
    expect(foreign).toEqual([]);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'api-docs.png'), fullPage: true });
    await context.close();
  });
});
