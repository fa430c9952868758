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

/** A connection for `role` to the Redis (or Redis Cluster) that `url` names. */
export function createRedis(url: string, role: RedisRole): RedisClient {
  const cluster = parseClusterUrl(url);
  if (isClusterUrl(url) && !cluster) throw new Error('REDIS_URL: expected redis+cluster://host:port,host:port');
  const redis = cluster ? new Cluster(cluster.nodes, clusterOptions(role, cluster)) : new Redis(url, redisOptions(role));
  // Without a listener ioredis prints unhandled "error" events; connection state is
  // surfaced through readiness checks and command failures instead.
  redis.on('error', () => {});
  return redis;
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
