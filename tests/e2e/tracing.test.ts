/**
 * Tracing end to end: producer, worker-io and worker-cpu (built dist) export their spans over
 * OTLP/HTTP to a receiver in this test. One submitted video makes one trace across the three
 * processes: the API's POST span → the flow's enqueue spans → each job's process span, with
 * the ffmpeg runs, provider calls, Redis and PostgreSQL calls under the jobs. The trace is
 * printed as a tree. Also: http/protobuf is sent when asked, and without an endpoint nothing of
 * the SDK is set up.
 */
import { execFile } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { DEV_API_KEY } from '@clipline/shared';
import { createUpstreamSimulator } from '../../infra/upstream-sim/src/index.js';
import { generateVideo } from '../helpers/media.js';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver.js';
import { freePort, startApp, stopApp, waitForHttp, type AppName, type RunningApp } from '../helpers/processes.js';
import { createTestEnvironment, waitFor, type TestEnvironment } from '../helpers/services.js';

import { jest } from '@jest/globals';

jest.setTimeout(300_000);

const ROOT = path.resolve(import.meta.dirname ?? '.', '../..');
const SPAN_KIND = { internal: 1, server: 2, client: 3, producer: 4, consumer: 5 } as const;

let env: TestEnvironment;
let receiver: OtlpReceiver;
let simulator: Awaited<ReturnType<typeof createUpstreamSimulator>> | undefined;
let webhookSink: http.Server | undefined;
let webhookUrl: string;
const webhooks: string[] = [];
const apps = new Map<AppName, RunningApp>();
let producerUrl: string;

beforeAll(async () => {
  env = await createTestEnvironment({ LOG_LEVEL: 'info', ALLOW_PRIVATE_SOURCES: 'true', API_RATE_LIMIT_PER_MINUTE: '0' });
  receiver = await startOtlpReceiver();
  simulator = await createUpstreamSimulator({ seed: 11 });
  webhookSink = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      webhooks.push(String(req.headers['webhook-id']));
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => webhookSink!.listen(0, '127.0.0.1', resolve));
  webhookUrl = `http://127.0.0.1:${(webhookSink.address() as AddressInfo).port}/hook`;
  const [port, ioPort, cpuPort] = await Promise.all([freePort(), freePort(), freePort()]);
  const appEnv = {
    ...env.env,
    HOST: '127.0.0.1',
    PORT: String(port),
    WORKER_IO_METRICS_PORT: String(ioPort),
    WORKER_CPU_METRICS_PORT: String(cpuPort),
    CPU_POOL_THREADS: '1',
    UPSTREAM_SIM_URL: simulator.url,
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
  };
  producerUrl = `http://127.0.0.1:${port}`;
  const health = { producer: `${producerUrl}/readyz`, 'worker-io': `http://127.0.0.1:${ioPort}/healthz`, 'worker-cpu': `http://127.0.0.1:${cpuPort}/healthz` };
  await Promise.all(
    (['producer', 'worker-io', 'worker-cpu'] as const).map(async (name) => {
      const app = startApp(name, appEnv);
      apps.set(name, app);
      // The SDK and the instrumentations load first: give a busy machine time for it.
      await waitForHttp(health[name], app, 60_000);
    }),
  );
});

afterAll(async () => {
  await Promise.all([...apps.values()].map((app) => stopApp(app, 'SIGKILL')));
  await simulator?.close();
  await new Promise((resolve) => webhookSink?.close(resolve));
  await receiver?.close();
  await env?.cleanup();
});

/** The process span of each job, by the job's name (`bullmq.job.name`), in start order. */
function jobSpans(spans: readonly ReceivedSpan[]): ReceivedSpan[] {
  return spans.filter((span) => span.kind === SPAN_KIND.consumer && span.name.startsWith('process ')).sort((a, b) => Number(a.startNs - b.startNs));
}

function jobNameOf(span: ReceivedSpan): string {
  return String(span.attributes['bullmq.job.name']);
}

/** The trace as an indented tree; sibling leaves of one name and service are folded into one line. */
function traceTree(spans: readonly ReceivedSpan[]): string {
  const byId = new Map(spans.map((span) => [span.spanId, span]));
  const children = new Map<string | undefined, ReceivedSpan[]>();
  for (const span of spans) {
    const parent = span.parentSpanId && byId.has(span.parentSpanId) ? span.parentSpanId : undefined;
    children.set(parent, [...(children.get(parent) ?? []), span]);
  }
  const t0 = [...spans].sort((a, b) => Number(a.startNs - b.startNs))[0]!.startNs;
  const ms = (ns: bigint) => Number(ns / 1_000_000n);
  const lines: string[] = [];
  const walk = (span: ReceivedSpan, depth: number, repeats: number) => {
    const job = span.attributes['bullmq.job.name'] ? ` job=${String(span.attributes['bullmq.job.name'])}` : '';
    const times = repeats > 1 ? ` ×${repeats}` : '';
    lines.push(`${'  '.repeat(depth)}${span.name}${job} [${span.service}] +${ms(span.startNs - t0)} ms, ${ms(span.endNs - span.startNs)} ms${times}`);
    const kids = (children.get(span.spanId) ?? []).sort((a, b) => Number(a.startNs - b.startNs));
    const leafKey = (kid: ReceivedSpan) => (children.get(kid.spanId)?.length ? undefined : `${kid.service}|${kid.name}`);
    const counts = new Map<string, number>();
    for (const kid of kids) {
      const key = leafKey(kid);
      if (key) counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    const shown = new Set<string>();
    for (const kid of kids) {
      const key = leafKey(kid);
      if (key && shown.has(key)) continue;
      if (key) shown.add(key);
      walk(kid, depth + 1, key ? (counts.get(key) ?? 1) : 1);
    }
  };
  for (const root of children.get(undefined) ?? []) walk(root, 0, 1);
  return lines.join('\n');
}

/** The chain of ancestors of a span, nearest first. */
function ancestors(span: ReceivedSpan, byId: Map<string, ReceivedSpan>): ReceivedSpan[] {
  const chain: ReceivedSpan[] = [];
  for (let parent = span.parentSpanId && byId.get(span.parentSpanId); parent; parent = parent.parentSpanId && byId.get(parent.parentSpanId)) chain.push(parent);
  return chain;
}

describe('one video, one trace', () => {
  it('links the POST, every job across the three processes and their ffmpeg, provider, Redis and PostgreSQL calls', async () => {
    const video = await generateVideo({ path: path.join(env.config.storageDir, 'traced.mp4'), segments: [2.2, 1.8, 2.4], width: 320, height: 180, fps: 25 });
    const requestId = 'trace-test-0001';
    const res = await fetch(`${producerUrl}/v1/videos`, {
      method: 'POST',
      headers: { authorization: `Bearer ${DEV_API_KEY}`, 'content-type': 'application/json', 'x-request-id': requestId },
      body: JSON.stringify({ source: video.path, title: 'traced', options: { clipCount: 1 }, callbackUrl: webhookUrl }),
    });
    expect(res.status).toBe(202);
    expect(res.headers.get('x-request-id')).toBe(requestId);

    // The webhook is the last hop; its job's span arrives within a batch interval of it.
    await waitFor(async () => (webhooks.length ? true : undefined), 240_000, 'the webhook');
    const post = await waitFor(
      async () =>
        receiver.spans.find(
          (span) =>
            span.kind === SPAN_KIND.server &&
            span.service === 'clipline-producer' &&
            span.attributes['http.route'] === '/v1/videos' &&
            span.attributes['http.request.method'] === 'POST',
        ),
      10_000,
      'the POST span',
    );
    const traced = () => receiver.spans.filter((span) => span.traceId === post.traceId);
    await waitFor(async () => (jobSpans(traced()).some((span) => jobNameOf(span) === 'deliver-webhook') ? true : undefined), 10_000, 'the webhook job span');
    // Let the last batches (the parent's final run, the spans of the delivery's own calls) arrive.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    const spans = traced();
    console.log(`trace ${post.traceId} (${spans.length} spans):\n${traceTree(spans)}`);

    // Workers' housekeeping (polls, lock renewals, stall checks) is sampled out; only work is traced.
    expect(receiver.spans.filter((span) => /^(getNextJob|extendLocks|moveStalledJobsToWait)\b/.test(span.name))).toEqual([]);
    // One trace across the three processes.
    expect(new Set(spans.map((span) => span.service))).toEqual(new Set(['clipline-producer', 'clipline-worker-io', 'clipline-worker-cpu']));
    expect(post.parentSpanId).toBeUndefined();
    const byId = new Map(spans.map((span) => [span.spanId, span]));

    // The chain, in the order the jobs started: ingest → analyze → persist → render → AI steps → notify.
    const jobs = jobSpans(spans);
    const firstStart = (name: string) => jobs.find((span) => jobNameOf(span) === name)?.startNs ?? -1n;
    const order = ['ingest-video', 'analyze-video', 'persist-analysis', 'render-clip', 'write-captions', 'generate-thumbnail', 'deliver-webhook'];
    for (const name of order) expect([name, firstStart(name) > 0n]).toEqual([name, true]);
    for (let index = 1; index < order.length; index++) expect(firstStart(order[index]!)).toBeGreaterThan(firstStart(order[index - 1]!));
    expect(firstStart('voiceover')).toBeGreaterThan(firstStart('write-captions'));

    // Each job's span is the child of the span that enqueued it (a PRODUCER span of its queue),
    // and every job leads back to the POST.
    for (const job of jobs) {
      const enqueuer = byId.get(job.parentSpanId ?? '');
      expect([job.name, jobNameOf(job), enqueuer?.kind]).toEqual([job.name, jobNameOf(job), SPAN_KIND.producer]);
      expect(enqueuer!.attributes['bullmq.queue.name']).toBe(job.attributes['bullmq.queue.name']);
      expect(ancestors(job, byId).at(-1)?.spanId).toBe(post.spanId);
    }
    // The steps the parent adds in its phases are enqueued from inside one of its own runs.
    const render = jobs.find((span) => jobNameOf(span) === 'render-clip')!;
    expect(ancestors(render, byId).find((span) => span.kind === SPAN_KIND.consumer)).toMatchObject({ name: 'process pipeline', service: 'clipline-worker-io' });
    const notify = jobs.find((span) => jobNameOf(span) === 'deliver-webhook')!;
    expect(ancestors(notify, byId).find((span) => span.kind === SPAN_KIND.consumer)).toMatchObject({ name: 'process pipeline' });

    // Calls inside jobs are their children: ffmpeg under analyze and render, provider calls under
    // the AI steps (with the HTTP client span below), PostgreSQL and Redis under worker-io jobs.
    const nearestJob = (span: ReceivedSpan) => ancestors(span, byId).find((parent) => parent.kind === SPAN_KIND.consumer);
    const under = (predicate: (span: ReceivedSpan) => boolean) => spans.filter(predicate).map((span) => jobNameOf(nearestJob(span) ?? span));
    expect(under((span) => span.name === 'ffmpeg')).toEqual(expect.arrayContaining(['analyze-video', 'render-clip']));
    // The source is an MP4: its facts and the transcript's sound come from its index, read in
    // the workers (spans of their own), so no ffprobe runs.
    expect(under((span) => span.name === 'ffprobe')).toEqual([]);
    expect(under((span) => span.name === 'mp4 index')).toContain('analyze-video');
    expect(spans.find((span) => span.name === 'mp4 index')!.attributes['clipline.facts_from_index']).toBe(true);
    expect(under((span) => span.name === 'm4a copy')).toEqual(['transcribe']);
    expect(spans.find((span) => span.name === 'm4a copy')!.attributes['clipline.m4a_copy']).toBe('copied');
    expect(under((span) => span.name.startsWith('provider '))).toEqual(
      expect.arrayContaining(['transcribe', 'write-captions', 'generate-thumbnail', 'voiceover']),
    );
    const providerCall = spans.find((span) => span.name.startsWith('provider openai'))!;
    expect(spans.some((span) => span.parentSpanId === providerCall.spanId && span.kind === SPAN_KIND.client)).toBe(true);
    expect(under((span) => span.attributes['db.system'] === 'postgresql' || span.attributes['db.system.name'] === 'postgresql')).toEqual(
      expect.arrayContaining(['ingest-video', 'persist-analysis', 'video-pipeline']),
    );
    expect(under((span) => span.attributes['db.system'] === 'redis' || span.attributes['db.system.name'] === 'redis').length).toBeGreaterThan(0);
    // Redis spans name their command, never its arguments (job payloads: source URLs, sealed passwords).
    const redisStatements = spans
      .filter((span) => span.attributes['db.system'] === 'redis' || span.attributes['db.system.name'] === 'redis')
      .map((span) => String(span.attributes['db.statement'] ?? span.attributes['db.query.text'] ?? ''));
    expect(redisStatements.filter((statement) => /\s|videoId|\{/.test(statement))).toEqual([]);
    // The producer's own PostgreSQL write sits under the POST.
    expect(
      spans.some(
        (span) =>
          span.service === 'clipline-producer' &&
          span.kind === SPAN_KIND.client &&
          ancestors(span, byId).includes(post) &&
          String(span.attributes['db.system'] ?? span.attributes['db.system.name']) === 'postgresql',
      ),
    ).toBe(true);

    // Log lines carry the trace: the request's line on the producer, the jobs' lines on worker-io
    // with the request id of the POST that started them.
    const lines = (name: AppName) =>
      apps
        .get(name)!
        .output()
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines('producer').find((line) => line.msg === 'request completed' && line.route === '/v1/videos')).toMatchObject({
      requestId,
      traceId: post.traceId,
      status: 202,
    });
    const jobLines = lines('worker-io').filter((line) => line.msg === 'job completed' && line.traceId === post.traceId);
    expect(jobLines.length).toBeGreaterThan(3);
    for (const line of jobLines) expect(line).toMatchObject({ requestId, spanId: expect.stringMatching(/^[0-9a-f]{16}$/) });
  });
});

describe('exporting', () => {
  const probe = `
    import { startTelemetry } from ${JSON.stringify(path.join(ROOT, 'packages/shared/dist/telemetry/index.js'))};
    const telemetry = await startTelemetry('clipline-probe');
    const { trace } = await import('@opentelemetry/api');
    trace.getTracer('probe').startSpan('protobuf-probe-span').end();
    await telemetry.shutdown();
    console.log(JSON.stringify({ enabled: telemetry.enabled, provider: Boolean(globalThis[Symbol.for('opentelemetry.js.api.1')]) }));
  `;
  const run = (extra: Record<string, string>) =>
    promisify(execFile)(process.execPath, ['--input-type=module', '-e', probe], {
      cwd: path.join(ROOT, 'packages/shared'),
      env: { PATH: process.env.PATH ?? '', ...extra },
    });

  it('sends http/protobuf when asked, under OTEL_SERVICE_NAME', async () => {
    const { stdout } = await run({
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
      OTEL_SERVICE_NAME: 'renamed-service',
    });
    expect(JSON.parse(stdout)).toEqual({ enabled: true, provider: true });
    const body = receiver.protobufBodies.find((candidate) => candidate.includes('protobuf-probe-span'));
    // Protobuf keeps strings as UTF-8 bytes: the span's name and the service's are in the body.
    expect(body?.includes('renamed-service')).toBe(true);
  });

  it('sets nothing up without an endpoint', async () => {
    const { stdout } = await run({});
    expect(JSON.parse(stdout)).toEqual({ enabled: false, provider: false });
  });

  it('refuses a protocol it cannot send', async () => {
    await expect(run({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).rejects.toMatchObject({
      stderr: expect.stringContaining('OTEL_EXPORTER_OTLP_PROTOCOL must be one of http/json, http/protobuf'),
    });
  });
});
