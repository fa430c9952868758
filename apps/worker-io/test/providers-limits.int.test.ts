import type { RedisClient } from '@clipline/shared';
import { Registry } from '@clipline/shared';
import { createUpstreamSimulator, type UpstreamSimulator } from '../../../infra/upstream-sim/src/index.js';
import { createProviderClients, loadProviderSettings, ProviderRateLimitedError, RateGate, type ProviderClients } from '../src/providers/index.js';
import { connectRedis, createTestEnvironment, type TestEnvironment } from '../../../tests/helpers/services.js';

let env: TestEnvironment;
let sim: UpstreamSimulator;
const connections: RedisClient[] = [];
const opened: ProviderClients[] = [];

beforeAll(async () => {
  env = await createTestEnvironment();
  sim = await createUpstreamSimulator({ apiKey: 'sim-key' });
});

afterEach(() => sim.reset());

afterAll(async () => {
  for (const clients of opened) clients.close();
  for (const redis of connections) redis.disconnect();
  await sim.close();
  await env.cleanup();
});

function connect(): RedisClient {
  const redis = connectRedis(env.config.redisUrl);
  connections.push(redis);
  return redis;
}

function clients(prefix: string, overrides: Record<string, string>): ProviderClients {
  const settings = loadProviderSettings({ UPSTREAM_SIM_URL: sim.url, ...overrides });
  const created = createProviderClients({ settings, redis: connect(), keyPrefix: prefix, registry: new Registry() });
  opened.push(created);
  return created;
}

const ask = (providers: ProviderClients) => providers.openai.chatCompletion({ messages: [{ role: 'user', content: 'x' }] });

describe('shared rate limits', () => {
  it('hand out exactly the burst from one bucket, whichever connection asks', async () => {
    const prefix = `${env.config.queuePrefix}:burst`;
    const gates = [new RateGate(connect(), prefix), new RateGate(connect(), prefix)];
    const decisions = await Promise.all(
      Array.from({ length: 40 }, (_, index) => (gates[index % 2] as RateGate).acquire('stability', { perSecond: 0.01, burst: 10 })),
    );
    expect(decisions.filter((decision) => decision.allowed)).toHaveLength(10);
    for (const decision of decisions.filter((d) => !d.allowed)) expect(decision).toMatchObject({ allowed: false, reason: 'limited' });
  });

  it('answer calls that ask together with shared commands, each call its own token or wait, a pause for all', async () => {
    const prefix = `${env.config.queuePrefix}:together`;
    const redis = connect();
    const gate = new RateGate(redis, prefix);
    // Counts the gate's commands (real Redis answers them).
    const commands = redis as unknown as { cliplineProviderAcquire: (...args: unknown[]) => Promise<unknown> };
    const send = commands.cliplineProviderAcquire.bind(redis);
    let sent = 0;
    commands.cliplineProviderAcquire = (...args: unknown[]) => {
      sent += 1;
      return send(...args);
    };
    const decisions = await Promise.all(Array.from({ length: 40 }, () => gate.acquire('stability', { perSecond: 1, burst: 10 })));
    expect(decisions.slice(0, 10).every((decision) => decision.allowed)).toBe(true);
    for (const decision of decisions.slice(10)) {
      expect(decision).toMatchObject({ allowed: false, reason: 'limited' });
      // The next token of a bucket refilling at 1/s comes within a second.
      expect((decision as { waitMs: number }).waitMs).toBeGreaterThanOrEqual(1);
      expect((decision as { waitMs: number }).waitMs).toBeLessThanOrEqual(1000);
    }
    expect(sent).toBeLessThan(40);
    // Without a bucket every call may go, in one command; once paused, none may.
    sent = 0;
    const free = await Promise.all(Array.from({ length: 20 }, () => gate.acquire('openai', undefined)));
    expect(free.every((decision) => decision.allowed)).toBe(true);
    expect(sent).toBe(1);
    await gate.pause('openai', 2000);
    const paused = await Promise.all(Array.from({ length: 5 }, () => gate.acquire('openai', undefined)));
    for (const decision of paused) expect(decision).toMatchObject({ allowed: false, reason: 'paused' });
  });

  it('pace calls of two clients to the shared rate, waiting briefly for tokens', async () => {
    const prefix = `${env.config.queuePrefix}:pace`;
    const limits = { OPENAI_RATE_LIMIT_PER_SECOND: '20', OPENAI_RATE_LIMIT_BURST: '1', PROVIDER_LIMITER_MAX_WAIT_MS: '5000' };
    const first = clients(prefix, limits);
    const second = clients(prefix, limits);
    const started = Date.now();
    await Promise.all(Array.from({ length: 12 }, (_, index) => ask(index % 2 ? first : second)));
    // 12 calls at 20/s with a burst of 1: the last may go out 11 × 50 ms after the first.
    expect(Date.now() - started).toBeGreaterThanOrEqual(500);
    const arrivals = sim
      .stats()
      .requests.map((request) => request.at)
      .sort((a, b) => a - b);
    expect(arrivals).toHaveLength(12);
    expect((arrivals.at(-1) ?? 0) - (arrivals[0] ?? 0)).toBeGreaterThanOrEqual(500);
  });

  it('refuse a call as rate-limited when no token comes within the wait allowed, without calling the provider', async () => {
    const limited = clients(`${env.config.queuePrefix}:refuse`, {
      OPENAI_RATE_LIMIT_PER_SECOND: '1',
      OPENAI_RATE_LIMIT_BURST: '2',
      PROVIDER_LIMITER_MAX_WAIT_MS: '0',
    });
    const outcomes = await Promise.all(
      Array.from({ length: 5 }, () =>
        ask(limited).then(
          () => 'ok',
          (error: unknown) => error,
        ),
      ),
    );
    expect(outcomes.filter((outcome) => outcome === 'ok')).toHaveLength(2);
    for (const outcome of outcomes.filter((o) => o !== 'ok')) {
      expect(outcome).toBeInstanceOf(ProviderRateLimitedError);
      expect(outcome).toMatchObject({ source: 'limiter' });
      expect((outcome as ProviderRateLimitedError).retryAfterMs).toBeLessThanOrEqual(1000);
    }
    expect(sim.stats().endpoints['openai.chat.completions'].requests).toBe(2);
  });

  it('keep the longer of two pauses, and honour a pause set through another connection', async () => {
    const prefix = `${env.config.queuePrefix}:pause`;
    const gate = new RateGate(connect(), prefix);
    expect(await gate.pause('elevenlabs', 3000)).toBe(3000);
    expect(await gate.pause('elevenlabs', 500)).toBeGreaterThan(2500);
    const other = clients(prefix, {});
    const error = await other.elevenlabs.synthesizeSpeech({ text: 'hello' }, '/tmp/never-written.mp3').catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(ProviderRateLimitedError);
    expect(error).toMatchObject({ source: 'paused' });
    expect(sim.stats().endpoints['elevenlabs.text-to-speech'].requests).toBe(0);
    // Other providers are not paused.
    await ask(other);
  });
});
