import { createUpstreamSimulator, type SimulatorStats, type UpstreamSimulator } from '../src/index.js';
import { loadContracts, type ProviderContracts } from './api-contracts.js';

const KEY = 'fault-key';
let sim: UpstreamSimulator;
let contracts: ProviderContracts;

beforeAll(async () => {
  contracts = loadContracts();
  sim = await createUpstreamSimulator({ apiKey: KEY, seed: 42 });
});

afterAll(() => sim.close());
afterEach(() => sim.reset());

function chat(signal?: AbortSignal): Promise<Response> {
  return fetch(`${sim.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }] }),
    ...(signal ? { signal } : {}),
  });
}

async function timed(request: () => Promise<Response>): Promise<{ ms: number; status: number; body: string }> {
  const started = performance.now();
  const res = await request();
  const body = await res.text();
  return { ms: performance.now() - started, status: res.status, body };
}

async function statusesOf(count: number): Promise<number[]> {
  const statuses: number[] = [];
  for (let index = 0; index < count; index++) statuses.push((await timed(() => chat())).status);
  return statuses;
}

describe('fault injection', () => {
  it('delays answers by a fixed latency', async () => {
    sim.configure({ endpoints: { 'openai.chat.completions': { latency: { kind: 'fixed', ms: 150 } } } });
    const { ms, status } = await timed(() => chat());
    expect(status).toBe(200);
    expect(ms).toBeGreaterThanOrEqual(148);
    expect(ms).toBeLessThan(1000);
    // Other endpoints keep their own (empty) faults.
    const other = await timed(() => fetch(`${sim.url}/youtube/v3/videos?part=id&id=dQw4w9WgXcQ&key=${KEY}`));
    expect(other.ms).toBeLessThan(ms);
    expect(sim.stats().endpoints['youtube.videos.list'].faults.delayed).toBe(0);
  });

  it('spreads uniform and normal latencies within their bounds', async () => {
    sim.configure({ all: { latency: { kind: 'uniform', minMs: 20, maxMs: 80 } } });
    const uniform = await Promise.all(Array.from({ length: 12 }, () => timed(() => chat())));
    for (const { ms } of uniform) {
      expect(ms).toBeGreaterThanOrEqual(19);
      expect(ms).toBeLessThan(1000);
    }
    expect(Math.max(...uniform.map((r) => r.ms)) - Math.min(...uniform.map((r) => r.ms))).toBeGreaterThan(10);
    sim.configure({ all: { latency: { kind: 'normal', meanMs: 60, stdDevMs: 10 } } });
    const normal = await Promise.all(Array.from({ length: 20 }, () => timed(() => chat())));
    const mean = normal.reduce((sum, r) => sum + r.ms, 0) / normal.length;
    expect(mean).toBeGreaterThan(45);
    expect(mean).toBeLessThan(300);
  });

  it('injects server errors at the configured rate, in the provider’s error shape', async () => {
    sim.configure({ endpoints: { 'openai.chat.completions': { errorRate: 0.3, errorStatus: 503 } } });
    const results = await Promise.all(Array.from({ length: 200 }, () => timed(() => chat())));
    const failures = results.filter((r) => r.status === 503);
    expect(failures.length).toBeGreaterThan(35);
    expect(failures.length).toBeLessThan(85);
    expect(contracts.openAiError(JSON.parse(failures[0]?.body ?? '{}'))).toBe(true);
    const stats = sim.stats().endpoints['openai.chat.completions'];
    expect(stats.statuses['503']).toBe(failures.length);
    expect(stats.statuses['200']).toBe(200 - failures.length);
    expect(stats.faults.serverError).toBe(failures.length);
  });

  it('answers 429 with Retry-After, by rate or for the next N requests', async () => {
    sim.configure({ endpoints: { 'openai.chat.completions': { rateLimitNext: 2, retryAfterSeconds: 7 } } });
    const first = await chat();
    expect(first.status).toBe(429);
    expect(first.headers.get('retry-after')).toBe('7');
    expect(((await first.json()) as { error: { code: string } }).error.code).toBe('rate_limit_exceeded');
    expect(await statusesOf(3)).toEqual([429, 200, 200]);
    sim.configure({ endpoints: { 'openai.chat.completions': { rateLimitRate: 1 } } });
    expect(await statusesOf(2)).toEqual([429, 429]);
  });

  it('never answers a timed-out request, and counts it', async () => {
    sim.configure({ endpoints: { 'openai.chat.completions': { timeoutRate: 1 } } });
    const started = performance.now();
    const error = await chat(AbortSignal.timeout(400)).then(
      () => undefined,
      (thrown: Error) => thrown,
    );
    expect(error?.name).toBe('TimeoutError');
    expect(performance.now() - started).toBeGreaterThanOrEqual(390);
    const stats = sim.stats().endpoints['openai.chat.completions'];
    expect(stats.faults.timeout).toBe(1);
    expect(stats.statuses).toEqual({});
  });

  it('sends bodies slowly at the configured bytes per second', async () => {
    sim.configure({ endpoints: { 'stability.text-to-image': { bytesPerSecond: 20_000 } } });
    const { ms, status, body } = await timed(() =>
      fetch(`${sim.url}/v1/generation/sd/text-to-image`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
        body: JSON.stringify({ text_prompts: [{ text: 'slow' }], width: 256, height: 256 }),
      }),
    );
    expect(status).toBe(200);
    const expectedMs = (Buffer.byteLength(body) / 20_000) * 1000;
    expect(expectedMs).toBeGreaterThan(300);
    expect(ms).toBeGreaterThan(expectedMs * 0.8);
    expect(ms).toBeLessThan(expectedMs * 2 + 1000);
    expect(sim.stats().endpoints['stability.text-to-image'].faults.slowBody).toBe(1);
  });

  it('answers malformed bodies that the providers’ contracts reject', async () => {
    sim.configure({ all: { malformedRate: 1 } });
    const res = await chat();
    expect(res.status).toBe(200);
    expect(contracts.chatCompletion(await res.json())).toBe(false);
    const list = await fetch(`${sim.url}/youtube/v3/videos?part=id&id=dQw4w9WgXcQ&key=${KEY}`);
    expect(contracts.youtubeVideoList(await list.json())).toBe(false);
  });

  it('replays the same fault sequence for the same seed', async () => {
    sim.configure({ seed: 9, endpoints: { 'openai.chat.completions': { errorRate: 0.5 } } });
    const first = await statusesOf(16);
    sim.configure({ seed: 10 });
    const other = await statusesOf(16);
    sim.reset();
    sim.configure({ seed: 9, endpoints: { 'openai.chat.completions': { errorRate: 0.5 } } });
    expect(await statusesOf(16)).toEqual(first);
    expect(other).not.toEqual(first);
  });

  it('takes its configuration over HTTP, refuses a bad one with a reason, and reports stats', async () => {
    const ok = await fetch(`${sim.url}/_sim/config`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ endpoints: { 'openai.chat.completions': { errorRate: 1, errorStatus: 502 } } }),
    });
    expect(ok.status).toBe(200);
    expect((await chat()).status).toBe(502);
    const bad = await fetch(`${sim.url}/_sim/config`, { method: 'POST', body: JSON.stringify({ endpoints: { 'openai.chat.completions': { errorRate: 2 } } }) });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/endpoints\.openai\.chat\.completions\.errorRate/);
    const unknown = await fetch(`${sim.url}/_sim/config`, { method: 'POST', body: JSON.stringify({ endpoints: { 'openai.images': {} } }) });
    expect(unknown.status).toBe(400);
    const stats = (await (await fetch(`${sim.url}/_sim/stats`)).json()) as SimulatorStats;
    expect(stats.endpoints['openai.chat.completions']).toMatchObject({ requests: 1, statuses: { '502': 1 } });
    expect(stats.requests.at(-1)).toMatchObject({ endpoint: 'openai.chat.completions', status: 502, outcome: 'server-error' });
    expect((await fetch(`${sim.url}/_sim/reset`, { method: 'POST' })).status).toBe(200);
    expect(sim.stats().endpoints['openai.chat.completions'].requests).toBe(0);
    expect((await chat()).status).toBe(200);
  });

  it('starts with the faults it was given and returns to them on reset', async () => {
    const configured = await createUpstreamSimulator({ apiKey: KEY, config: { endpoints: { 'openai.chat.completions': { errorRate: 1 } } } });
    try {
      const ask = () => fetch(`${configured.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${KEY}` }, body: '{}' });
      expect((await ask()).status).toBe(503);
      configured.configure({ endpoints: { 'openai.chat.completions': { errorRate: 0 } } });
      expect((await ask()).status).toBe(400);
      configured.reset();
      expect((await ask()).status).toBe(503);
    } finally {
      await configured.close();
    }
  });
});
