import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { elevenLabsSpeech } from './endpoints/elevenlabs-speech.js';
import type { EndpointDefinition, EndpointSettings, SimProvider } from './endpoints/endpoint.js';
import { mediaFiles } from './endpoints/media-files.js';
import { openAiChatCompletions } from './endpoints/openai-chat.js';
import { openAiTranscriptions } from './endpoints/openai-transcriptions.js';
import { stabilityTextToImage } from './endpoints/stability-text-to-image.js';
import { youtubeVideosList } from './endpoints/youtube-videos.js';
import {
  applyConfigPatch,
  faultsOf,
  parseConfigPatch,
  SIM_ENDPOINTS,
  SimConfigError,
  type ConfigPatch,
  type EndpointFaults,
  type SimEndpoint,
  type SimulatorConfig,
} from './fault-config.js';
import { planFaults } from './fault-plan.js';
import { BodyTooLargeError, jsonReply, readBody, sendReply, type SimReply } from './http-io.js';
import { oneSecondMp3 } from './media-tools.js';
import { RequestStats, type SimulatorStats } from './request-stats.js';
import { deriveSeed, SeededRandom } from './seeded-random.js';

export interface UpstreamSimulatorOptions {
  /** Port to listen on; 0 picks a free one. @defaultValue 0 */
  port?: number;
  /** @defaultValue '127.0.0.1' */
  host?: string;
  /** Faults (and seed) at start; `reset()` returns to them. @defaultValue no faults */
  config?: ConfigPatch;
  /** Seed of every random decision, unless `config.seed` sets it. @defaultValue 1 */
  seed?: number;
  /** The key every provider accepts, unless `apiKeys` names another. @defaultValue 'sim-key' */
  apiKey?: string;
  apiKeys?: Partial<Record<SimProvider, string>>;
  /** Directory served under `/media/`. @defaultValue none (404) */
  mediaDir?: string;
  /** @defaultValue 'ffmpeg' */
  ffmpegPath?: string;
  /** How many recent requests `stats().requests` keeps. @defaultValue 20000 */
  requestLogLimit?: number;
}

export interface UpstreamSimulator {
  /** Base URL, e.g. `http://127.0.0.1:3900` (no trailing slash). */
  readonly url: string;
  readonly port: number;
  /** Merges a fault patch into the running configuration; throws {@link SimConfigError} when invalid. */
  configure(patch: ConfigPatch): SimulatorConfig;
  config(): SimulatorConfig;
  stats(): SimulatorStats;
  /** Clears statistics and returns to the configuration given at start (generators reseeded). */
  reset(): void;
  /** Stops listening and cuts every open connection, pending timeouts included. */
  close(): Promise<void>;
}

const ENDPOINTS: readonly EndpointDefinition[] = [
  youtubeVideosList,
  openAiChatCompletions,
  openAiTranscriptions,
  stabilityTextToImage,
  elevenLabsSpeech,
  mediaFiles,
];

const PROVIDERS: readonly SimProvider[] = ['youtube', 'openai', 'stability', 'elevenlabs'];

function route(pathname: string): { endpoint: EndpointDefinition; params: Record<string, string> } | undefined {
  for (const endpoint of ENDPOINTS) {
    const params = endpoint.match(pathname);
    if (params) return { endpoint, params };
  }
  return undefined;
}

/** `rateLimitNext` is a countdown, not a setting: it is taken out of the patch and counted down per request. */
function splitCountdowns(patch: ConfigPatch): { rest: ConfigPatch; countdowns: Partial<Record<SimEndpoint, number>> } {
  const countdowns: Partial<Record<SimEndpoint, number>> = {};
  const strip = (faults: Partial<EndpointFaults> | undefined) => {
    if (!faults || faults.rateLimitNext === undefined) return { faults, count: undefined };
    const { rateLimitNext, ...others } = faults;
    return { faults: others, count: rateLimitNext };
  };
  const all = strip(patch.all);
  if (all.count !== undefined) for (const endpoint of SIM_ENDPOINTS) countdowns[endpoint] = all.count;
  const endpoints: Partial<Record<SimEndpoint, Partial<EndpointFaults>>> = {};
  for (const [endpoint, faults] of Object.entries(patch.endpoints ?? {}) as [SimEndpoint, Partial<EndpointFaults>][]) {
    const stripped = strip(faults);
    if (stripped.count !== undefined) countdowns[endpoint] = stripped.count;
    endpoints[endpoint] = stripped.faults ?? {};
  }
  return { rest: { ...patch, ...(all.faults ? { all: all.faults } : {}), endpoints }, countdowns };
}

/**
 * Starts the upstream simulator: a real HTTP server with the request and response shapes of
 * the providers the workers call, and faults configurable per endpoint.
 */
export async function createUpstreamSimulator(options: UpstreamSimulatorOptions = {}): Promise<UpstreamSimulator> {
  const apiKey = options.apiKey ?? 'sim-key';
  const apiKeys = Object.fromEntries(PROVIDERS.map((provider) => [provider, options.apiKeys?.[provider] ?? apiKey])) as Record<SimProvider, string>;
  const ffmpegPath = options.ffmpegPath ?? 'ffmpeg';
  const stats = new RequestStats(options.requestLogLimit ?? 20_000);

  const baseConfig: SimulatorConfig = { seed: options.seed ?? 1, all: {}, endpoints: {}, youtubeRevision: 0 };
  const initial = splitCountdowns(parseConfigPatch(options.config ?? {}));
  const initialConfig = applyConfigPatch(baseConfig, initial.rest);
  let config = initialConfig;
  let countdowns = { ...initial.countdowns };
  let generators = new Map<SimEndpoint, SeededRandom>();
  const reseed = () => {
    generators = new Map(SIM_ENDPOINTS.map((endpoint) => [endpoint, new SeededRandom(deriveSeed(config.seed, 'faults', endpoint))]));
  };
  reseed();

  const configure = (input: ConfigPatch): SimulatorConfig => {
    const { rest, countdowns: fresh } = splitCountdowns(parseConfigPatch(input));
    const seedChanged = rest.seed !== undefined && rest.seed !== config.seed;
    config = applyConfigPatch(config, rest);
    countdowns = { ...countdowns, ...fresh };
    if (seedChanged) reseed();
    return structuredClone(config);
  };

  const reset = () => {
    config = initialConfig;
    countdowns = { ...initial.countdowns };
    reseed();
    stats.reset();
  };

  const settings = (): EndpointSettings => ({
    apiKeys,
    seed: config.seed,
    ffmpegPath,
    mediaDir: options.mediaDir,
    youtubeRevision: config.youtubeRevision,
  });

  async function control(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const answer = (reply: SimReply) => sendReply(res, reply, null);
    const key = `${req.method ?? 'GET'} ${url.pathname}`;
    if (key === 'GET /_sim/stats') return void (await answer(jsonReply(200, stats.snapshot())));
    if (key === 'GET /_sim/config') return void (await answer(jsonReply(200, config)));
    if (key === 'GET /_sim/health') return void (await answer(jsonReply(200, { status: 'ok' })));
    if (key === 'POST /_sim/reset') {
      reset();
      return void (await answer(jsonReply(200, { status: 'reset' })));
    }
    if (key === 'POST /_sim/config') {
      let patch: unknown;
      try {
        patch = JSON.parse((await readBody(req, 1024 * 1024)).toString('utf8'));
      } catch (error) {
        return void (await answer(jsonReply(400, { error: `the config must be a JSON object: ${(error as Error).message}` })));
      }
      try {
        return void (await answer(jsonReply(200, configure(patch as ConfigPatch))));
      } catch (error) {
        if (error instanceof SimConfigError) return void (await answer(jsonReply(400, { error: error.message })));
        throw error;
      }
    }
    await answer(jsonReply(404, { error: `no control route ${key}; try GET /_sim/stats, GET|POST /_sim/config, POST /_sim/reset` }));
  }

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://upstream-sim');
    if (url.pathname.startsWith('/_sim/')) return control(req, res, url);
    const found = route(url.pathname);
    if (!found) {
      stats.unknownPath();
      await sendReply(res, jsonReply(404, { error: `the simulator serves no ${req.method} ${url.pathname}` }), null);
      return;
    }
    const { endpoint, params } = found;
    if (!endpoint.methods.includes(req.method ?? '')) {
      await sendReply(res, jsonReply(405, { error: `${url.pathname} takes ${endpoint.methods.join(', ')}` }, { allow: endpoint.methods.join(', ') }), null);
      return;
    }
    const record = stats.arrived(endpoint.id, req.method ?? 'GET', url.pathname);
    res.once('close', () => stats.finished(record, res.writableFinished ? res.statusCode : null));
    const remaining = countdowns[endpoint.id] ?? 0;
    if (remaining > 0) countdowns[endpoint.id] = remaining - 1;
    const faults = faultsOf(config, endpoint.id);
    const random = generators.get(endpoint.id) ?? new SeededRandom(config.seed);
    const plan = planFaults(faults, random, remaining > 0);
    stats.planned(record, plan);
    if (plan.outcome === 'timeout') {
      // Never answer: the request stays open until the client gives up or the simulator closes.
      req.resume();
      return;
    }
    let body: Buffer = Buffer.alloc(0);
    if (endpoint.bodyLimitBytes > 0) {
      try {
        body = await readBody(req, endpoint.bodyLimitBytes);
      } catch (error) {
        if (!(error instanceof BodyTooLargeError)) throw error;
        await sendReply(res, endpoint.tooLarge(error.limitBytes, error.receivedBytes), null);
        return;
      }
    } else {
      req.resume();
    }
    if (plan.delayMs > 0) {
      // A client that hangs up (or the simulator closing) ends the wait: no timer outlives its request.
      const gone = new AbortController();
      res.once('close', () => gone.abort());
      await sleep(plan.delayMs, undefined, { signal: gone.signal }).catch(() => {});
    }
    if (res.destroyed) return;
    const current = settings();
    let reply = endpoint.checkAuth(req, url, current);
    if (!reply && plan.outcome === 'rate-limited') {
      const rateLimited = endpoint.rateLimited(faults.retryAfterSeconds, faults.rateLimitReason);
      reply = { ...rateLimited, headers: { ...rateLimited.headers, 'retry-after': String(faults.retryAfterSeconds) } };
    }
    if (!reply && plan.outcome === 'server-error') {
      const failed = endpoint.serverError(faults.errorStatus);
      const after = faults.errorRetryAfterSeconds;
      reply = after === null ? failed : { ...failed, headers: { ...failed.headers, 'retry-after': String(after) } };
    }
    if (!reply && plan.outcome === 'malformed') reply = endpoint.malformed();
    if (!reply) {
      const random = new SeededRandom(deriveSeed(config.seed, endpoint.id, url.pathname, url.search, body));
      reply = await endpoint.handle({ req, url, params, body, random, settings: current });
    }
    await sendReply(res, reply, plan.bytesPerSecond);
  }

  // Warm the speech audio now so the first text-to-speech answer is not slowed by ffmpeg; a
  // failure here is reported by that endpoint when it is called.
  await oneSecondMp3(ffmpegPath).catch(() => undefined);

  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    serve(req, res).catch((error: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      void sendReply(res, jsonReply(500, { error: `simulator failure: ${(error as Error).message}` }), null);
    });
  });
  // Clients keep connections alive; closing idle ones first would make them race a reused socket.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    configure,
    config: () => structuredClone(config),
    stats: () => stats.snapshot(),
    reset,
    close: () =>
      (closing ??= new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        for (const socket of sockets) socket.destroy();
      })),
  };
}
