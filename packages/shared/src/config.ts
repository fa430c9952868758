import { isIP } from 'node:net';
import path from 'node:path';
import { z } from 'zod';
import { providerEnvSchema, providerSettings, timerSeconds } from './config-providers.js';
import { usableCores } from './cores.js';
import { parseKeyring } from './crypto/keyring.js';
import { DatabaseUrlError, engineOfUrl, resolveDatabaseTarget } from './db/database-target.js';
import { clusterUrlOfNodes, hashTagOf, isClusterUrl, parseClusterUrl } from './redis.js';

export { DEFAULT_BASE_URLS, providerEnvSchema, type UpstreamProvider } from './config-providers.js';
export { CGROUP_FILES, cgroupCpuLimit, coresOfCfsQuota, coresOfCpuMax, type TextReader, type UsableCoresSources, usableCores } from './cores.js';

/** Dev-only credentials: accepted only when NODE_ENV is not `production`. */
export const DEV_API_KEY = 'dev-key-clipline';
/** Dev-only operator key, so a local start can make tenant keys (`clipline keys create`). */
export const DEV_ADMIN_API_KEY = 'dev-admin-key-clipline';
export const DEV_DASHBOARD_USER = 'admin';
export const DEV_DASHBOARD_PASSWORD = 'clipline';
/** Dev-only keyring sealing passwords between the API and the CPU pool (`id:base64 key`). */
export const DEV_ACCOUNTS_KEYRING = `dev:${Buffer.from('clipline-dev-accounts-key-32bytes').subarray(0, 32).toString('base64')}`;

/** Largest source picture analysed: DCI 8K (8192x4320), so every 8K camera's frame passes. */
export const DEFAULT_MAX_SOURCE_PIXELS = 8192 * 4320;

/**
 * The embedded database a local start uses when `DATABASE_URL` is unset: a SQLite file beside
 * the stored media. Production must name its database.
 */
export const DEFAULT_DATABASE_URL = `sqlite:${path.resolve('.data/clipline.db')}`;

/** `DATABASE_URL`: its scheme picks the engine. */
export const databaseUrlSchema = z
  .string()
  .refine((url) => engineOfUrl(url) !== undefined, 'expected postgres://…, mysql://… (or mariadb://…) or sqlite:path/to/file.db');

/** `DATABASE_SCHEMA`: a PostgreSQL schema, a MySQL database or a SQLite file beside the named one. */
export const databaseSchemaSchema = z
  .string()
  .regex(/^[a-z_][a-z0-9_]*$/, 'lower-case identifier expected')
  .default('public');

const port = (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback);
const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);
const commaList = z.string().transform((value) =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0),
);
/** A proxy address or range `trust proxy` takes: an IP, an IP/prefix, or one of proxy-addr's names. */
const trustedProxy = z.string().refine(
  (entry) => {
    if (entry === 'loopback' || entry === 'linklocal' || entry === 'uniquelocal') return true;
    const [address = '', prefix, ...rest] = entry.split('/');
    const family = isIP(address);
    if (family === 0 || rest.length > 0) return false;
    return prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128));
  },
  { message: 'each entry must be an IP address, an address/prefix range, or loopback, linklocal or uniquelocal' },
);
const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'expected true or false' })
  .transform((value) => value === 'true' || value === '1' || value === 'yes');

/**
 * The variables of the whole system but the providers' (see `config-providers.ts`). Defaults
 * make a local start work with no variables at all; production refuses the dev credentials
 * (see {@link configSchema}).
 */
/** ACCOUNTS_KEYRING's shape: `id:base64key` entries, comma-separated. */
const KEYRING_SHAPE = /^[A-Za-z0-9_-]{1,32}:[A-Za-z0-9+/=]{43,44}(,[A-Za-z0-9_-]{1,32}:[A-Za-z0-9+/=]{43,44})*$/;

/** Why ACCOUNTS_KEYRING cannot be used as a keyring, or undefined when it can. */
function keyringProblem(text: string): string | undefined {
  try {
    parseKeyring(text);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

const coreEnvSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Longest a log line waits to be written to stdout with others, in ms; 0 writes each at once. */
  LOG_FLUSH_MS: z.coerce.number().int().min(0).max(10_000).default(50),
  /**
   * Redis holding the queues: `redis://` or `rediss://` for one server, or
   * `redis+cluster://host:port,host:port` (`rediss+cluster://` for TLS) for a Redis Cluster.
   * @defaultValue redis://127.0.0.1:6379
   */
  REDIS_URL: z
    .string()
    .refine(
      (url) => (isClusterUrl(url) ? parseClusterUrl(url) !== undefined : z.url({ protocol: /^rediss?$/ }).safeParse(url).success),
      'expected a redis:// or rediss:// URL, or redis+cluster://host:port,host:port',
    )
    .default('redis://127.0.0.1:6379'),
  /**
   * Nodes of a Redis Cluster (`host:port,host:port`), another way to name one: user, password and
   * TLS then come from `REDIS_URL`.
   */
  REDIS_CLUSTER_NODES: commaList
    .refine((nodes) => nodes.length === 0 || parseClusterUrl(`redis+cluster://${nodes.join(',')}`) !== undefined, 'expected host:port,host:port')
    .default([]),
  /**
   * Prefix of every Redis key, so several deployments (or test files) can share one Redis. Its
   * hash tag (`{…}`) puts every key in one Redis Cluster slot, which BullMQ's flows need there.
   */
  QUEUE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9:_{}-]+$/, 'letters, digits, ":", "_", "-", "{" and "}" only')
    .default('{clipline}'),
  /**
   * The database: `postgres://…`, `mysql://…` / `mariadb://…`, or `sqlite:path`.
   * @defaultValue {@link DEFAULT_DATABASE_URL} (SQLite; refused in production)
   */
  DATABASE_URL: databaseUrlSchema.optional(),
  /** Schema holding clipline's tables; created on migration when missing. */
  DATABASE_SCHEMA: databaseSchemaSchema,
  DATABASE_POOL_SIZE: positiveInt(10),
  /** Where ingested sources and rendered files live. */
  STORAGE_DIR: z.string().min(1).default(path.resolve('.data/storage')),
  /** Largest source accepted by ingest, in bytes. @defaultValue 2 GiB */
  MAX_SOURCE_BYTES: positiveInt(2 * 1024 ** 3),
  /** Longest source accepted by analysis, in seconds. @defaultValue 4 hours */
  MAX_SOURCE_SECONDS: positiveInt(4 * 3600),
  /** Largest source picture accepted by analysis, in pixels (width × height). @defaultValue DCI 8K, 8192x4320 */
  MAX_SOURCE_PIXELS: positiveInt(DEFAULT_MAX_SOURCE_PIXELS),
  /**
   * Directories from which local-file sources may be read. Empty outside production means
   * "anywhere"; empty in production means local files are refused.
   */
  FILE_SOURCE_ROOTS: commaList.default([]),
  PORT: port(3000),
  /**
   * Address every HTTP listener binds (API, dashboard, metrics). Loopback unless set, so a local
   * start is not reachable from the network; containers set `0.0.0.0`.
   */
  HOST: z.string().min(1).default('127.0.0.1'),
  DASHBOARD_PORT: port(3001),
  /** The producer's Prometheus endpoint, apart from the public API listener. */
  PRODUCER_METRICS_PORT: port(9463),
  WORKER_IO_METRICS_PORT: port(9464),
  WORKER_CPU_METRICS_PORT: port(9465),
  /** Comma-separated API keys accepted on /v1 routes; each key is a tenant of its own. */
  API_KEYS: commaList.optional(),
  /** Comma-separated operator keys: they see and act on every tenant's work. */
  ADMIN_API_KEYS: commaList.default([]),
  DASHBOARD_USER: z.string().min(1).optional(),
  DASHBOARD_PASSWORD: z.string().min(1).optional(),
  /** A read-only dashboard account (no retries, removals or pauses); off unless both are set. */
  DASHBOARD_VIEWER_USER: z.string().min(1).optional(),
  DASHBOARD_VIEWER_PASSWORD: z.string().min(1).optional(),
  /** Failed authentications one client address may make per minute before it is answered 429. */
  AUTH_FAILURES_PER_MINUTE: positiveInt(20),
  /** Unfinished videos one tenant may have at once; more are refused with 429. */
  MAX_ACTIVE_VIDEOS_PER_TENANT: positiveInt(1000),
  /** Live event streams one API key may hold open at once. */
  SSE_MAX_STREAMS_PER_KEY: positiveInt(50),
  /** Seconds after which a live event stream ends (the client reconnects with Last-Event-ID). */
  SSE_MAX_SECONDS: timerSeconds(3600),
  /** Keep a video's source file after its analysis and renders are done. */
  KEEP_SOURCES: bool.default(false),
  /** Days after which a finished video's files and rows are removed by the retention job. */
  RETENTION_DAYS: positiveInt(30),
  /** Jobs one worker-io process runs at once. */
  WORKER_IO_CONCURRENCY: positiveInt(50),
  /**
   * Videos one worker-cpu process analyses at once; frames of each fan out over the pool.
   * @defaultValue 2, or 1 where only one core is usable (see {@link usableCores})
   */
  WORKER_CPU_CONCURRENCY: positiveInt(Math.min(2, usableCores())),
  /** Threads of the worker-cpu pool. @defaultValue the usable cores: available CPUs capped by the cgroup CPU quota */
  CPU_POOL_THREADS: positiveInt(usableCores()),
  /** Frames per second sampled for analysis. */
  ANALYZE_FPS: z.coerce.number().positive().max(60).default(10),
  /** Width frames are scaled to for analysis (height keeps the aspect). */
  ANALYZE_WIDTH: positiveInt(160),
  /** Seconds a process waits for active jobs on SIGTERM before it gives up. */
  SHUTDOWN_TIMEOUT_SECONDS: timerSeconds(8),
  /**
   * Times a job may be found without a live worker (its process killed or frozen) and put back
   * before it fails for good; it guards against a job that kills every worker that takes it.
   */
  JOB_STALL_LIMIT: positiveInt(3),
  FFMPEG_PATH: z.string().default('ffmpeg'),
  FFPROBE_PATH: z.string().default('ffprobe'),
  /**
   * How worker-cpu starts ffmpeg and ffprobe: `helper`, from a small process of its own (a start
   * then costs worker-cpu a message, not a fork of its whole memory), or `direct`, forked from it.
   */
  FFMPEG_SPAWNING: z.enum(['helper', 'direct']).default('helper'),
  /** Let ingest download from loopback/private addresses (dev and tests). */
  ALLOW_PRIVATE_SOURCES: bool.optional(),
  /** Seconds an http(s) download may take before it is abandoned. */
  DOWNLOAD_TIMEOUT_SECONDS: timerSeconds(600),
  /** Requests per minute one API key may make; 0 turns the limit off. */
  API_RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(0).default(1200),
  /** Submissions per key per minute before its jobs yield to lighter submitters. */
  FAIR_SHARE_QUOTA_PER_MINUTE: positiveInt(60),
  /** Hours an Idempotency-Key is remembered. */
  IDEMPOTENCY_TTL_HOURS: positiveInt(24),
  /**
   * Keys sealing passwords on their way from the API to the CPU pool: `id:base64key,…`, 32-byte
   * keys, the first one current (rotate by putting a new key first).
   */
  ACCOUNTS_KEYRING: z
    .string()
    .regex(KEYRING_SHAPE, 'expected id:base64key[,id:base64key…] with 32-byte keys')
    // The shape passes keys that do not decode to 32 bytes, or an id named twice (a rotation gone wrong).
    .superRefine((text, context) => {
      const problem = KEYRING_SHAPE.test(text) ? keyringProblem(text) : undefined;
      if (problem) context.addIssue({ code: 'custom', message: problem, params: { valueHidden: true } });
    })
    .optional(),
  /** How often tracked videos' YouTube metadata is refreshed, in seconds. */
  METADATA_SYNC_INTERVAL_SECONDS: timerSeconds(3600),
  /** Seconds one webhook POST may take. */
  WEBHOOK_TIMEOUT_SECONDS: timerSeconds(10),
  /** Origins allowed by CORS (comma-separated, or "*"); empty turns CORS off. */
  CORS_ORIGINS: commaList.default([]),
  /**
   * The reverse proxies in front of the producer and the dashboard (addresses, CIDR ranges, or
   * `loopback`, `linklocal`, `uniquelocal`, comma-separated): a request arriving from one of them
   * is counted against the client address it names in `X-Forwarded-For`, and its scheme is
   * `X-Forwarded-Proto`'s. Empty (the default): the TCP peer is the client, and those headers are
   * ignored, so nobody can forge them.
   */
  TRUST_PROXY: commaList.pipe(z.array(trustedProxy)).default([]),
  /**
   * Clips one worker-cpu process renders at once. Unset, worker-cpu renders as many as it has
   * usable cores ({@link defaultRenderConcurrency}), each ffmpeg taking its share of them.
   */
  RENDER_CONCURRENCY: z.coerce.number().int().positive().optional(),
  /** libx264 preset of rendered clips. @defaultValue veryfast */
  RENDER_PRESET: z.enum(['ultrafast', 'superfast', 'veryfast', 'faster', 'fast', 'medium', 'slow']).default('veryfast'),
  /** libx264 constant rate factor of rendered clips (0-51, lower is better). @defaultValue 20 */
  RENDER_CRF: z.coerce.number().int().min(0).max(51).default(20),
});

/**
 * Clips a worker-cpu process renders at once when `RENDER_CONCURRENCY` is unset: one per usable
 * core. Each render's ffmpeg threads over the cores divided by the renders running beside it, so
 * one long clip still gets every core and several short ones each get one, instead of
 * queueing behind each other while their threads wait on one another.
 */
export function defaultRenderConcurrency(cores: number = usableCores()): number {
  return Math.max(1, Math.floor(cores));
}

/** Every environment variable the system reads, flat, as the environment holds them. */
const envSchema = z.object({ ...coreEnvSchema.shape, ...providerEnvSchema.shape });
type EnvVariables = z.output<typeof envSchema>;

/** Secrets shorter than this (in UTF-8 bytes) are refused in production. */
export const MIN_SECRET_BYTES = 32;

/** Why a production secret is unsafe (a placeholder, a dev value or too short), or undefined. */
function weakSecret(value: string, devValue?: string): string | undefined {
  if (devValue !== undefined && value === devValue) return 'the dev value is refused in production';
  if (/^change[-_ ]?me/i.test(value) || /^(x+|secret|password|changeit)$/i.test(value)) return 'a placeholder is refused in production';
  if (Buffer.byteLength(value) < MIN_SECRET_BYTES) return `must be at least ${MIN_SECRET_BYTES} bytes in production (e.g. $(openssl rand -base64 32))`;
  return undefined;
}

/**
 * A problem with a variable whose value must not be shown (a secret, a URL with a password):
 * {@link parseEnv} prints its name and the message only.
 */
function refuse(context: z.RefinementCtx, variable: string, message: string): void {
  context.addIssue({ code: 'custom', path: [variable], message, params: { valueHidden: true } });
}

/**
 * What the variables cannot be together, checked once each of them is valid on its own: the
 * database URL with its schema, and in production missing secrets, dev values, placeholders,
 * short secrets and the upstream simulator.
 */
function refuseUnsafeCombinations(env: EnvVariables, context: z.RefinementCtx): void {
  if (env.NODE_ENV === 'production') {
    if (!env.API_KEYS?.length) refuse(context, 'API_KEYS', 'must be set in production (comma-separated keys)');
    if (!env.DASHBOARD_PASSWORD) refuse(context, 'DASHBOARD_PASSWORD', 'must be set in production');
    if (!env.ACCOUNTS_KEYRING) refuse(context, 'ACCOUNTS_KEYRING', 'must be set in production (id:base64key, e.g. main:$(openssl rand -base64 32))');
    if (env.ACCOUNTS_KEYRING === DEV_ACCOUNTS_KEYRING) refuse(context, 'ACCOUNTS_KEYRING', 'the dev value is refused in production');
    if (!env.DATABASE_URL) refuse(context, 'DATABASE_URL', 'must be set in production (postgres://…; the SQLite default is for a local start)');
    const secrets: [string, string | undefined, string?][] = [
      ...(env.API_KEYS ?? []).map((key): [string, string, string] => ['API_KEYS', key, DEV_API_KEY]),
      ...env.ADMIN_API_KEYS.map((key): [string, string, string] => ['ADMIN_API_KEYS', key, key === DEV_API_KEY ? DEV_API_KEY : DEV_ADMIN_API_KEY]),
      ['DASHBOARD_PASSWORD', env.DASHBOARD_PASSWORD, DEV_DASHBOARD_PASSWORD],
      ['DASHBOARD_VIEWER_PASSWORD', env.DASHBOARD_VIEWER_PASSWORD],
    ];
    // One line per variable and weakness, however many of its keys share it.
    const named = new Set<string>();
    for (const [variable, value, devValue] of secrets) {
      const weakness = value === undefined ? undefined : weakSecret(value, devValue);
      if (weakness === undefined || named.has(`${variable}: ${weakness}`)) continue;
      named.add(`${variable}: ${weakness}`);
      refuse(context, variable, weakness);
    }
    // The simulator answers with made-up content: never let it stand in for the real providers.
    if (env.UPSTREAM_SIM_URL) refuse(context, 'UPSTREAM_SIM_URL', 'the upstream simulator is refused in production');
  }
  const cluster = isClusterUrl(env.REDIS_URL) || env.REDIS_CLUSTER_NODES.length > 0;
  if (isClusterUrl(env.REDIS_URL) && env.REDIS_CLUSTER_NODES.length) {
    refuse(context, 'REDIS_CLUSTER_NODES', 'names a cluster that REDIS_URL already names: set one of them');
  }
  if (cluster && hashTagOf(env.QUEUE_PREFIX) === undefined) {
    refuse(context, 'QUEUE_PREFIX', 'needs a hash tag on a Redis Cluster, e.g. {clipline}, so that every key of a video flow lands in one slot');
  }
  try {
    resolveDatabaseTarget(env.DATABASE_URL ?? DEFAULT_DATABASE_URL, env.DATABASE_SCHEMA);
  } catch (error) {
    if (!(error instanceof DatabaseUrlError)) throw error;
    refuse(context, 'DATABASE_URL', error.message.replace(/^DATABASE_URL /, ''));
  }
}

/** Local files may come from anywhere outside production unless roots are named; nowhere in it. */
function fileSourceRoots(roots: string[], production: boolean): string[] | 'any' {
  if (roots.length) return roots.map((root) => path.resolve(root));
  return production ? [] : 'any';
}

/** Outside production an unset ADMIN_API_KEYS means the dev operator key, as API_KEYS means the dev key. */
function adminApiKeys(keys: string[], production: boolean): string[] {
  return keys.length || production ? keys : [DEV_ADMIN_API_KEY];
}

/** The camelCase configuration the processes read, from valid variables. */
function toConfig(env: EnvVariables) {
  const production = env.NODE_ENV === 'production';
  return {
    env: env.NODE_ENV,
    logLevel: env.LOG_LEVEL,
    logFlushMs: env.LOG_FLUSH_MS,
    /** One URL either way: a cluster named by REDIS_CLUSTER_NODES becomes a redis+cluster:// URL. */
    redisUrl: env.REDIS_CLUSTER_NODES.length && !isClusterUrl(env.REDIS_URL) ? clusterUrlOfNodes(env.REDIS_CLUSTER_NODES, env.REDIS_URL) : env.REDIS_URL,
    queuePrefix: env.QUEUE_PREFIX,
    databaseUrl: env.DATABASE_URL ?? DEFAULT_DATABASE_URL,
    databaseSchema: env.DATABASE_SCHEMA,
    databasePoolSize: env.DATABASE_POOL_SIZE,
    storageDir: path.resolve(env.STORAGE_DIR),
    maxSourceBytes: env.MAX_SOURCE_BYTES,
    maxSourceSeconds: env.MAX_SOURCE_SECONDS,
    maxSourcePixels: env.MAX_SOURCE_PIXELS,
    fileSourceRoots: fileSourceRoots(env.FILE_SOURCE_ROOTS, production),
    host: env.HOST,
    port: env.PORT,
    dashboardPort: env.DASHBOARD_PORT,
    producerMetricsPort: env.PRODUCER_METRICS_PORT,
    workerIoMetricsPort: env.WORKER_IO_METRICS_PORT,
    workerCpuMetricsPort: env.WORKER_CPU_METRICS_PORT,
    apiKeys: env.API_KEYS?.length ? env.API_KEYS : [DEV_API_KEY],
    adminApiKeys: adminApiKeys(env.ADMIN_API_KEYS, production),
    dashboardUser: env.DASHBOARD_USER ?? DEV_DASHBOARD_USER,
    dashboardPassword: env.DASHBOARD_PASSWORD ?? DEV_DASHBOARD_PASSWORD,
    /** The read-only dashboard account, when both of its variables are set. */
    dashboardViewer:
      env.DASHBOARD_VIEWER_USER && env.DASHBOARD_VIEWER_PASSWORD ? { user: env.DASHBOARD_VIEWER_USER, password: env.DASHBOARD_VIEWER_PASSWORD } : null,
    authFailuresPerMinute: env.AUTH_FAILURES_PER_MINUTE,
    maxActiveVideosPerTenant: env.MAX_ACTIVE_VIDEOS_PER_TENANT,
    sseMaxStreamsPerKey: env.SSE_MAX_STREAMS_PER_KEY,
    sseMaxSeconds: env.SSE_MAX_SECONDS,
    keepSources: env.KEEP_SOURCES,
    retentionDays: env.RETENTION_DAYS,
    workerIoConcurrency: env.WORKER_IO_CONCURRENCY,
    workerCpuConcurrency: env.WORKER_CPU_CONCURRENCY,
    cpuPoolThreads: env.CPU_POOL_THREADS,
    analyzeFps: env.ANALYZE_FPS,
    analyzeWidth: env.ANALYZE_WIDTH,
    shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_SECONDS * 1000,
    jobStallLimit: env.JOB_STALL_LIMIT,
    ffmpegPath: env.FFMPEG_PATH,
    ffprobePath: env.FFPROBE_PATH,
    ffmpegSpawning: env.FFMPEG_SPAWNING,
    allowPrivateSources: env.ALLOW_PRIVATE_SOURCES ?? !production,
    downloadTimeoutMs: env.DOWNLOAD_TIMEOUT_SECONDS * 1000,
    apiRateLimitPerMinute: env.API_RATE_LIMIT_PER_MINUTE,
    fairShareQuotaPerMinute: env.FAIR_SHARE_QUOTA_PER_MINUTE,
    idempotencyTtlSeconds: env.IDEMPOTENCY_TTL_HOURS * 3600,
    corsOrigins: env.CORS_ORIGINS,
    trustProxy: env.TRUST_PROXY.length ? env.TRUST_PROXY : (false as const),
    accountsKeyring: env.ACCOUNTS_KEYRING ?? DEV_ACCOUNTS_KEYRING,
    metadataSyncIntervalMs: env.METADATA_SYNC_INTERVAL_SECONDS * 1000,
    webhookTimeoutMs: env.WEBHOOK_TIMEOUT_SECONDS * 1000,
    /** worker-cpu's rendering; `renderConcurrency` undefined means {@link defaultRenderConcurrency}. */
    cpuWorker: {
      renderConcurrency: env.RENDER_CONCURRENCY,
      renderPreset: env.RENDER_PRESET,
      renderCrf: env.RENDER_CRF,
    },
    /** The upstream providers (worker-io): connections, breaker, retries and limits. */
    providers: providerSettings(env),
  };
}

/**
 * The one configuration schema: environment variables in, the camelCase {@link Config} out.
 * Each variable is checked on its own first; the checks across variables (production) run only
 * once every variable is valid, so a message never reasons about a value that was already wrong.
 */
export const configSchema = envSchema.superRefine(refuseUnsafeCombinations, { when: (payload) => payload.issues.length === 0 }).transform(toConfig);

/** What {@link configSchema} reads: every variable, as strings. */
export type Env = z.input<typeof configSchema>;

/** Arrays and objects all the way down are read-only, as {@link deepFreeze} leaves them. */
export type DeepReadonly<T> = T extends readonly (infer Item)[]
  ? readonly DeepReadonly<Item>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

/** The configuration every process starts with, frozen. */
export type Config = DeepReadonly<z.output<typeof configSchema>>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function deepFreeze<T>(value: T): DeepReadonly<T>;
function deepFreeze(value: unknown): unknown {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/** Parses with `schema`, empty strings counting as unset; a failure throws a {@link ConfigError} naming every bad variable. */
/** Variables whose values are never echoed in an error: keys, passwords, keyrings and URLs. */
const SECRET_VARIABLE = /KEY|PASSWORD|KEYRING|SECRET|_URL$/;

function parseVariables<S extends z.ZodType>(schema: S, source: Record<string, string | undefined>): z.output<S> {
  // Empty (or blank) strings count as unset, so `FOO=` in a compose file falls back to the
  // default, and `FOO=' '` is not read as the number 0.
  const cleaned = Object.fromEntries(Object.entries(source).filter(([, value]) => value !== undefined && value.trim() !== ''));
  const parsed = schema.safeParse(cleaned);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((issue) => {
    const name = issue.path.join('.');
    // Name the variable, never the value, for problems with secrets (and URLs, which may carry a
    // password): these messages reach logs.
    const valueHidden = (issue.code === 'custom' && issue.params?.valueHidden === true) || SECRET_VARIABLE.test(name);
    return valueHidden ? `  ${name}: ${issue.message}` : `  ${name}=${JSON.stringify(cleaned[name] ?? '')}: ${issue.message}`;
  });
  throw new ConfigError(`invalid environment:\n${lines.join('\n')}`);
}

/**
 * Parses environment variables with any zod schema into a frozen object: empty strings count as
 * unset, and a failure throws a {@link ConfigError} naming every bad variable (with its value,
 * unless the problem is about a secret). The CLI and the upstream simulator use it for settings
 * of their own; the processes' variables all belong in {@link configSchema}.
 */
export function parseEnv<S extends z.ZodType>(schema: S, source: Record<string, string | undefined>): Readonly<z.output<S>> {
  const settings = parseVariables(schema, source);
  deepFreeze(settings);
  return settings;
}

/**
 * Parses the environment once into a frozen {@link Config}. Throws a {@link ConfigError}
 * whose message names every bad variable and what was expected of it.
 */
export function loadConfig(source: Record<string, string | undefined> = process.env): Config {
  return deepFreeze(parseVariables(configSchema, source));
}

/**
 * Runs a config loader or, on a bad variable, prints the reason and exits with code 78
 * (EX_CONFIG). Without a loader, loads the shared {@link Config} from `process.env`.
 */
export function loadConfigOrExit(source?: Record<string, string | undefined>): Config;
export function loadConfigOrExit<T>(source: Record<string, string | undefined>, loader: (source: Record<string, string | undefined>) => T): T;
export function loadConfigOrExit<T>(
  source: Record<string, string | undefined> = process.env,
  loader?: (source: Record<string, string | undefined>) => T,
): Config | T {
  try {
    return loader ? loader(source) : loadConfig(source);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`clipline: ${error.message}\n`);
      process.exit(78);
    }
    throw error;
  }
}
