import type { RedisClient } from '@clipline/shared';
import { Registry } from '@clipline/shared';
import type { UpstreamSimulator } from '../../../infra/upstream-sim/src/index.js';
import {
  createProviderClients,
  loadProviderSettings,
  ProviderBreakerOpenError,
  ProviderPermanentError,
  ProviderTransientError,
  type ProviderClients,
} from '../src/providers/index.js';
import { waitFor, type TestEnvironment } from '../../../tests/helpers/services.js';
import { startUpstreamFixture, type UpstreamFixture } from './upstream-fixture.js';

const RESET_MS = 1500;
let fixture: UpstreamFixture;
let env: TestEnvironment;
let sim: UpstreamSimulator;
let redis: RedisClient;
let registry: Registry;
let providers: ProviderClients;

beforeAll(async () => {
  fixture = await startUpstreamFixture();
  ({ env, sim, redis } = fixture);
});

beforeEach(() => {
  sim.reset();
  registry = new Registry();
  const settings = loadProviderSettings({
    UPSTREAM_SIM_URL: sim.url,
    PROVIDER_BREAKER_VOLUME_THRESHOLD: '3',
    PROVIDER_BREAKER_ERROR_PERCENT: '50',
    PROVIDER_BREAKER_RESET_MS: String(RESET_MS),
    OPENAI_RATE_LIMIT_PER_SECOND: '0',
  });
  providers = createProviderClients({ settings, redis, keyPrefix: env.config.queuePrefix, registry });
});

afterEach(() => providers.close());

afterAll(async () => {
  await fixture.close();
});

const ask = () => providers.openai.chatCompletion({ messages: [{ role: 'user', content: 'caption please' }] });
const outcome = (promise: Promise<unknown>) =>
  promise.then(
    () => 'ok',
    (error: Error) => error.constructor.name,
  );
const chatRequests = () => sim.stats().endpoints['openai.chat.completions'].requests;

async function gaugeValue(provider: string): Promise<number | undefined> {
  const metric = await registry.getSingleMetric('clipline_provider_breaker_state')?.get();
  return metric?.values.find((value) => value.labels.provider === provider)?.value;
}

/** Polls until the reset timeout has half-opened the OpenAI breaker; no call is made meanwhile. */
async function halfOpen(): Promise<void> {
  const requests = chatRequests();
  await waitFor(async () => (providers.breakerStates().openai === 'half-open' ? true : undefined), RESET_MS + 10_000, 'the breaker to half-open');
  expect(chatRequests()).toBe(requests);
}

describe('provider circuit breaker', () => {
  it('stays open when its trial call is cancelled before the provider answered', async () => {
    sim.configure({ endpoints: { 'openai.chat.completions': { errorRate: 1, errorStatus: 503 } } });
    for (let call = 0; call < 3; call++) await outcome(ask());
    expect(providers.breakerStates().openai).toBe('open');
    await halfOpen();
    sim.configure({ endpoints: { 'openai.chat.completions': { errorRate: 0, latency: { kind: 'fixed', ms: 2000 } } } });
    const cancel = new AbortController();
    const reason = new Error('video cancelled');
    const trial = providers.openai.chatCompletion({ messages: [{ role: 'user', content: 'caption please' }] }, { signal: cancel.signal });
    setTimeout(() => cancel.abort(reason), 100);
    await expect(trial).rejects.toBe(reason);
    // Nothing was learnt of the provider: the breaker is not closed by the cancelled trial.
    expect(providers.breakerStates().openai).toBe('open');
  });

  it('opens after the configured failures, short-circuits, half-opens after the reset timeout and closes when the upstream heals', async () => {
    sim.configure({ endpoints: { 'openai.chat.completions': { errorRate: 1, errorStatus: 503 } } });

    // Three calls fill the volume threshold; all failed, so the third opens the breaker.
    for (let call = 0; call < 3; call++) expect(await outcome(ask())).toBe(ProviderTransientError.name);
    expect(providers.breakerStates().openai).toBe('open');
    expect(await gaugeValue('openai')).toBe(2);
    expect(chatRequests()).toBe(3);

    // Open: calls fail without reaching the simulator.
    const shortCircuited = await Promise.all(Array.from({ length: 10 }, () => ask().catch((error: unknown) => error)));
    for (const error of shortCircuited) {
      expect(error).toBeInstanceOf(ProviderBreakerOpenError);
      expect((error as ProviderBreakerOpenError).retryAfterMs).toBeLessThanOrEqual(RESET_MS);
    }
    expect(chatRequests()).toBe(3);
    // Other providers have breakers of their own.
    expect(providers.breakerStates()).toMatchObject({ youtube: 'closed', stability: 'closed', elevenlabs: 'closed' });

    // After the reset timeout one trial goes through; the upstream is still sick, so it opens again.
    await halfOpen();
    expect(await gaugeValue('openai')).toBe(1);
    expect(await outcome(ask())).toBe(ProviderTransientError.name);
    expect(chatRequests()).toBe(4);
    expect(providers.breakerStates().openai).toBe('open');
    expect(await outcome(ask())).toBe(ProviderBreakerOpenError.name);
    expect(chatRequests()).toBe(4);

    // The upstream heals; the next trial succeeds and closes the breaker.
    sim.configure({ endpoints: { 'openai.chat.completions': { errorRate: 0 } } });
    await halfOpen();
    expect(await outcome(ask())).toBe('ok');
    expect(providers.breakerStates().openai).toBe('closed');
    expect(await gaugeValue('openai')).toBe(0);
    expect(await outcome(ask())).toBe('ok');
    expect(chatRequests()).toBe(6);
  });

  it('does not open on answers that say the request was wrong (4xx)', async () => {
    const wrongKey = createProviderClients({
      settings: loadProviderSettings({ UPSTREAM_SIM_URL: sim.url, OPENAI_API_KEY: 'sk-wrong', PROVIDER_BREAKER_VOLUME_THRESHOLD: '3' }),
      redis,
      keyPrefix: env.config.queuePrefix,
      registry: new Registry(),
    });
    try {
      for (let call = 0; call < 6; call++) {
        expect(await outcome(wrongKey.openai.chatCompletion({ messages: [{ role: 'user', content: 'x' }] }))).toBe(ProviderPermanentError.name);
      }
      expect(wrongKey.breakerStates().openai).toBe('closed');
      expect(chatRequests()).toBe(6);
    } finally {
      wrongKey.close();
    }
  });

  it('counts timeouts as failures', async () => {
    sim.configure({ endpoints: { 'youtube.videos.list': { timeoutRate: 1 } } });
    const slow = createProviderClients({
      settings: loadProviderSettings({
        UPSTREAM_SIM_URL: sim.url,
        YOUTUBE_TIMEOUT_MS: '150',
        PROVIDER_GET_RETRIES: '0',
        PROVIDER_BREAKER_VOLUME_THRESHOLD: '2',
      }),
      redis,
      keyPrefix: env.config.queuePrefix,
      registry: new Registry(),
    });
    try {
      for (let call = 0; call < 2; call++) expect(await outcome(slow.youtube.listVideos(['dQw4w9WgXcQ']))).toBe(ProviderTransientError.name);
      expect(slow.breakerStates().youtube).toBe('open');
      expect(await outcome(slow.youtube.listVideos(['dQw4w9WgXcQ']))).toBe(ProviderBreakerOpenError.name);
      expect(sim.stats().endpoints['youtube.videos.list'].requests).toBe(2);
    } finally {
      slow.close();
    }
  });
});
