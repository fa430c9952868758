import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';

/**
 * A connection to the Redis holding the queues: one server (`Redis`) or a Redis Cluster
 * (`Cluster`). Both speak the same commands; BullMQ takes either as its connection. Every key
 * clipline writes starts with the queue prefix, whose hash tag (`{clipline}`) puts all of them
 * in one cluster slot, so MULTI, Lua scripts and BullMQ's flows never span two slots.
 */
export type RedisClient = Redis | Cluster;

/**
 * Connections differ by role:
 * - `producer`: fails fast. With no offline queue a command sent while Redis is down rejects at
 *   once, so the HTTP API can answer 503 instead of hanging.
 * - `worker`: blocks forever on purpose (`maxRetriesPerRequest: null`), as BullMQ workers need,
 *   and reconnects with a capped backoff when Redis comes back.
 */
export type RedisRole = 'producer' | 'worker';

/** A Redis Cluster as a URL names it: the nodes to start from, and what every node needs. */
export interface RedisClusterTarget {
  nodes: { host: string; port: number }[];
  username?: string;
  password?: string;
  tls: boolean;
}

const CLUSTER_SCHEME = /^(rediss?)\+cluster:\/\/(.*)$/;

/** Whether `url` names a Redis Cluster (`redis+cluster://…` or `rediss+cluster://…`). */
export function isClusterUrl(url: string): boolean {
  return CLUSTER_SCHEME.test(url);
}

/** `host:port` (IPv6 hosts in brackets) into its parts; undefined when it is not one. */
function parseNode(text: string): { host: string; port: number } | undefined {
  const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?$/.exec(text.trim());
  if (!match) return undefined;
  const port = Number(match[2] ?? 6379);
  if (port < 1 || port > 65535) return undefined;
  return { host: match[1]!.replace(/^\[(.*)\]$/, '$1'), port };
}

/**
 * Parses `redis+cluster://[user[:password]@]host:port[,host:port…][/]` (`rediss+cluster://` for
 * TLS); undefined when `url` is not such a URL. Credentials are percent-decoded, like a
 * `redis://` URL's. A cluster has only database 0, so no other database may be named.
 */
export function parseClusterUrl(url: string): RedisClusterTarget | undefined {
  const match = CLUSTER_SCHEME.exec(url);
  if (!match) return undefined;
  const rest = match[2]!.replace(/\/0?$/, '');
  const at = rest.lastIndexOf('@');
  const credentials = at >= 0 ? rest.slice(0, at) : '';
  const nodes = (at >= 0 ? rest.slice(at + 1) : rest).split(',').map(parseNode);
  if (nodes.length === 0 || nodes.some((node) => node === undefined)) return undefined;
  const [user = '', ...secret] = credentials.split(':');
  const password = secret.join(':');
  try {
    return {
      nodes: nodes as { host: string; port: number }[],
      ...(user ? { username: decodeURIComponent(user) } : {}),
      ...(password ? { password: decodeURIComponent(password) } : {}),
      tls: match[1] === 'rediss',
    };
  } catch {
    return undefined;
  }
}

/**
 * The cluster URL for `REDIS_CLUSTER_NODES` (`host:port,host:port`): user, password and TLS come
 * from `redisUrl` (a `redis://` or `rediss://` URL), so one setting holds the credentials either way.
 */
export function clusterUrlOfNodes(nodes: readonly string[], redisUrl: string): string {
  const base = new URL(redisUrl);
  const credentials = base.username || base.password ? `${base.username}${base.password ? `:${base.password}` : ''}@` : '';
  const scheme = base.protocol === 'rediss:' ? 'rediss+cluster' : 'redis+cluster';
  return `${scheme}://${credentials}${nodes.map((node) => node.trim()).join(',')}`;
}

/**
 * The hash tag of a key prefix as Redis Cluster computes it: the text between the first `{` and
 * the next `}`, when not empty. Keys sharing it share a slot. Undefined when there is none.
 */
export function hashTagOf(prefix: string): string | undefined {
  const open = prefix.indexOf('{');
  const close = open < 0 ? -1 : prefix.indexOf('}', open + 1);
  return close > open + 1 ? prefix.slice(open + 1, close) : undefined;
}

const retryStrategy = (attempt: number) => Math.min(attempt * 200, 2000);

export function redisOptions(role: RedisRole): RedisOptions {
  if (role === 'producer') {
    return { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2000, retryStrategy, lazyConnect: false };
  }
  return { maxRetriesPerRequest: null, enableReadyCheck: true, retryStrategy };
}

/**
 * The same roles on a cluster. When a primary dies, its slots answer nothing until a replica
 * is promoted (after `cluster-node-timeout`, then an election): a command meanwhile is retried
 * against refreshed slots every `retryDelayOnFailover` ms, up to `maxRedirections` times. The
 * producer gives up after about 1.5 s (the API answers 503 and the client retries); a worker
 * keeps trying for about 30 s, long enough for a failover with a node timeout of up to 15 s,
 * and BullMQ retries its loop after that anyway.
 */
export function clusterOptions(role: RedisRole, target: RedisClusterTarget): ClusterOptions {
  const node = {
    ...(target.username ? { username: target.username } : {}),
    ...(target.password ? { password: target.password } : {}),
    ...(target.tls ? { tls: {} } : {}),
  };
  const clusterRetryStrategy = retryStrategy;
  if (role === 'producer') {
    return {
      enableOfflineQueue: false,
      clusterRetryStrategy,
      retryDelayOnFailover: 150,
      retryDelayOnClusterDown: 150,
      maxRedirections: 10,
      slotsRefreshTimeout: 2000,
      redisOptions: { ...node, maxRetriesPerRequest: 1, connectTimeout: 2000 },
    };
  }
  return {
    enableReadyCheck: true,
    clusterRetryStrategy,
    retryDelayOnFailover: 300,
    retryDelayOnClusterDown: 300,
    retryDelayOnTryAgain: 300,
    maxRedirections: 100,
    slotsRefreshTimeout: 2000,
    redisOptions: { ...node, maxRetriesPerRequest: null },
  };
}

/**
 * What a duplicate of a worker's cluster connection changes: BullMQ duplicates the connection it
 * is given for each Worker's blocking BZPOPMIN, and guards that command with a watchdog of about
 * its block timeout (≥ 2 s). A BZPOPMIN still retrying through a failover when the watchdog
 * fires makes BullMQ reset the connection, which can wait forever for a cluster whose node pool
 * the failover emptied; failing within about 1.5 s instead sends it down BullMQ's error path,
 * which reconnects the cluster under a time limit and fetches again.
 */
const BLOCKING_DUPLICATE: ClusterOptions = { maxRedirections: 16, retryDelayOnFailover: 100, retryDelayOnClusterDown: 100, retryDelayOnTryAgain: 100 };

/** What {@link ClipLineCluster} reaches inside ioredis's Cluster. */
interface ClusterInternals {
  setStatus(status: string): void;
  handleCloseEvent(): void;
}

/**
 * ioredis's Cluster, ending when it is disconnected with no node connection left. ioredis ends a
 * cluster once the last of its node connections has closed; when a failover has already emptied
 * the pool there is none left to close, so neither `close` nor `end` would ever come, and BullMQ,
 * which waits for `end` when it resets a stuck blocking connection, would wait forever (its
 * worker then takes no more jobs). Here the cluster closes as ioredis would have.
 */
class ClipLineCluster extends Cluster {
  constructor(
    /** The nodes it was started from, for its duplicates. */
    readonly seeds: ConstructorParameters<typeof Cluster>[0],
    options: ClusterOptions,
  ) {
    super(seeds, options);
  }

  /**
   * ioredis's `connect()` promise is left pending for ever when its first attempt fails and the
   * cluster retry strategy reconnects: the attempt's listeners are dropped on `close`, so neither
   * the later `ready` nor `end` settles it. BullMQ awaits that promise when it recovers a blocking
   * connection after a failover, and the worker then never fetches again. Here it settles on the
   * cluster's own `ready` or `end`, whichever attempt brings it.
   */
  override connect(): Promise<void> {
    const attempt = super.connect();
    return new Promise<void>((resolve, reject) => {
      const settle = (error?: Error) => {
        this.removeListener('ready', onReady);
        this.removeListener('end', onEnd);
        if (error) reject(error);
        else resolve();
      };
      const onReady = () => settle();
      const onEnd = () => settle(new Error('Connection is closed.'));
      this.once('ready', onReady);
      this.once('end', onEnd);
      attempt.then(() => settle(), settle);
    });
  }

  override disconnect(reconnect = false): void {
    const empty = this.nodes('all').length === 0;
    super.disconnect(reconnect);
    if (!empty || this.status !== 'disconnecting') return;
    const internals = this as unknown as ClusterInternals;
    internals.setStatus('close');
    // A connecting cluster ends (or reconnects) on `close` by itself; otherwise do what it would have done.
    if ((this.status as string) === 'close') internals.handleCloseEvent();
  }
}

/** A worker's cluster connection: patient itself, its blocking duplicates fail fast (see {@link BLOCKING_DUPLICATE}). */
class WorkerCluster extends ClipLineCluster {
  override duplicate(overrideStartupNodes: ConstructorParameters<typeof Cluster>[0] = [], overrideOptions: ClusterOptions = {}): Cluster {
    const nodes = overrideStartupNodes.length > 0 ? overrideStartupNodes : this.seeds;
    return new ClipLineCluster(nodes, { ...this.options, ...BLOCKING_DUPLICATE, ...overrideOptions });
  }
}

/** A connection for `role` to the Redis (or Redis Cluster) that `url` names. */
export interface RedisConnectionOptions {
  /**
   * A command without an answer this long fails ("Command timed out"), on a connection that
   * stays open but stops answering (a paused or wedged server, a network black hole). Only for
   * connections that run no blocking command.
   */
  commandTimeoutMs?: number;
}

export function createRedis(url: string, role: RedisRole, options: RedisConnectionOptions = {}): RedisClient {
  const cluster = parseClusterUrl(url);
  if (isClusterUrl(url) && !cluster) throw new Error('REDIS_URL: expected redis+cluster://host:port,host:port');
  const ClusterKind = role === 'worker' ? WorkerCluster : ClipLineCluster;
  const timeout = options.commandTimeoutMs ? { commandTimeout: options.commandTimeoutMs } : {};
  const redis = cluster
    ? (() => {
        const clusterSettings = clusterOptions(role, cluster);
        return new ClusterKind(cluster.nodes, { ...clusterSettings, redisOptions: { ...clusterSettings.redisOptions, ...timeout } });
      })()
    : new Redis(url, { ...redisOptions(role), ...timeout });
  // Without a listener ioredis prints unhandled "error" events; connection state is
  // surfaced through readiness checks and command failures instead.
  redis.on('error', () => {});
  if (options.commandTimeoutMs && redis instanceof Redis) reconnectAfterTimeouts(redis);
  return redis;
}

/**
 * A command that timed out says the connection is wedged: it is dropped and opened again. Until
 * Redis answers the new one, the connection is not ready, so what checks readiness (the API's
 * queue guard, the rate limits' local fallback) answers at once instead of each command of a
 * request waiting out its own timeout.
 */
function reconnectAfterTimeouts(redis: Redis): void {
  // Only a command sent on the connection still open may condemn it: commands of an earlier
  // connection time out later (they are sent again after a reconnect) and say nothing of this one.
  let connection = 0;
  redis.on('ready', () => {
    connection += 1;
  });
  // ioredis sends the commands of a dropped connection again through here: each is judged once, by its first sending.
  const watched = new WeakSet<object>();
  const send = redis.sendCommand.bind(redis);
  redis.sendCommand = ((command: Parameters<Redis['sendCommand']>[0], stream?: Parameters<Redis['sendCommand']>[1]) => {
    const sent = send(command, stream);
    if (watched.has(command)) return sent;
    watched.add(command);
    const sentOn = connection;
    command.promise.catch((error: unknown) => {
      if ((error as Error)?.message === 'Command timed out' && redis.status === 'ready' && sentOn === connection) redis.disconnect(true);
    });
    return sent;
  }) as Redis['sendCommand'];
}

/**
 * The primaries of a cluster, or the one server: where commands that act on one node's keys
 * only (SCAN, KEYS, INFO keyspace) must be sent, each, to see everything. A cluster still
 * connecting knows no nodes yet, so this first waits for one command to go through.
 */
export async function primariesOf(redis: RedisClient): Promise<Redis[]> {
  if (!(redis instanceof Cluster)) return [redis];
  if (redis.status !== 'ready') await redis.ping();
  return redis.nodes('master');
}

/** Seconds between the lines saying a process still waits for Redis at start-up. */
const STILL_WAITING_LOG_MS = 30_000;

/**
 * Waits for `ready` (a start-up step that needs Redis), saying so when Redis does not answer: the
 * first connection error at once, then a line every 30 s while it lasts. ioredis keeps retrying
 * quietly, so without this a process pointed at a wrong REDIS_URL would print nothing at all
 * until its start-up probe gave up on it. The error's text names the address, never a password.
 */
export async function whileWaitingForRedis<T>(
  redis: Redis | Cluster,
  logger: { warn(fields: object, message: string): void; info(fields: object, message: string): void },
  ready: Promise<T>,
): Promise<T> {
  let failing: { since: number; logged: number } | undefined;
  const onError = (error: Error) => {
    const now = Date.now();
    if (!failing) {
      failing = { since: now, logged: now };
      logger.warn({ reason: error.message }, 'cannot reach Redis (REDIS_URL); waiting for it before taking jobs');
    } else if (now - failing.logged >= STILL_WAITING_LOG_MS) {
      failing.logged = now;
      logger.warn({ reason: error.message, waitingSeconds: Math.round((now - failing.since) / 1000) }, 'still waiting for Redis (REDIS_URL)');
    }
  };
  redis.on('error', onError);
  try {
    const value = await ready;
    if (failing) logger.info({ waitedSeconds: Math.round((Date.now() - failing.since) / 1000) }, 'Redis answers');
    return value;
  } finally {
    redis.off('error', onError);
  }
}
