/**
 * How a Redis Cluster is named (REDIS_URL as redis+cluster://, or REDIS_CLUSTER_NODES) and the
 * prefix rule that keeps every key of a deployment in one slot.
 */
import { clusterOptions, clusterUrlOfNodes, ConfigError, hashTagOf, loadConfig, parseClusterUrl } from '@clipline/shared';

function configError(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('expected the configuration to be refused');
}

describe('parseClusterUrl', () => {
  it('reads the nodes, the credentials and TLS', () => {
    expect(parseClusterUrl('redis+cluster://127.0.0.1:7000,127.0.0.1:7001,redis-2.internal')).toEqual({
      nodes: [
        { host: '127.0.0.1', port: 7000 },
        { host: '127.0.0.1', port: 7001 },
        { host: 'redis-2.internal', port: 6379 },
      ],
      tls: false,
    });
    expect(parseClusterUrl('rediss+cluster://clipline:p%40ss:word@[::1]:7000,[fd00::2]:7001/')).toEqual({
      nodes: [
        { host: '::1', port: 7000 },
        { host: 'fd00::2', port: 7001 },
      ],
      username: 'clipline',
      password: 'p@ss:word',
      tls: true,
    });
    expect(parseClusterUrl('redis+cluster://:secret@10.0.0.1:7000/0')).toEqual({ nodes: [{ host: '10.0.0.1', port: 7000 }], password: 'secret', tls: false });
  });

  it('refuses what is not a cluster URL, a database other than 0, bad ports and empty nodes', () => {
    for (const url of [
      'redis://127.0.0.1:6379',
      'redis+cluster://',
      'redis+cluster://127.0.0.1:7000,',
      'redis+cluster://127.0.0.1:70000',
      'redis+cluster://127.0.0.1:7000/2',
      'redis+cluster://a b:7000',
    ]) {
      expect({ url, parsed: parseClusterUrl(url) }).toEqual({ url, parsed: undefined });
    }
  });

  it('builds the cluster URL of REDIS_CLUSTER_NODES with the credentials and TLS of REDIS_URL', () => {
    expect(clusterUrlOfNodes(['10.0.0.1:7000', ' 10.0.0.2:7000'], 'rediss://app:secret@ignored:6379')).toBe(
      'rediss+cluster://app:secret@10.0.0.1:7000,10.0.0.2:7000',
    );
    expect(clusterUrlOfNodes(['10.0.0.1:7000'], 'redis://127.0.0.1:6379')).toBe('redis+cluster://10.0.0.1:7000');
  });
});

describe('hashTagOf', () => {
  it('is the text between the first "{" and the next "}", as Redis Cluster hashes it', () => {
    expect(hashTagOf('{clipline}')).toBe('clipline');
    expect(hashTagOf('{clipline}:ingest:42')).toBe('clipline');
    expect(hashTagOf('eu:{clipline}:x{y}')).toBe('clipline');
    expect(hashTagOf('clipline')).toBeUndefined();
    expect(hashTagOf('{}clipline')).toBeUndefined();
    expect(hashTagOf('clip{line')).toBeUndefined();
  });
});

describe('configuration of a cluster', () => {
  it('takes a redis+cluster:// REDIS_URL, and hash-tags the default prefix', () => {
    const config = loadConfig({ REDIS_URL: 'redis+cluster://127.0.0.1:7000,127.0.0.1:7001' });
    expect({ redisUrl: config.redisUrl, queuePrefix: config.queuePrefix }).toEqual({
      redisUrl: 'redis+cluster://127.0.0.1:7000,127.0.0.1:7001',
      queuePrefix: '{clipline}',
    });
  });

  it('turns REDIS_CLUSTER_NODES into the one URL every process connects with', () => {
    const config = loadConfig({ REDIS_URL: 'redis://:secret@127.0.0.1:6379', REDIS_CLUSTER_NODES: '127.0.0.1:7000, 127.0.0.1:7001' });
    expect(config.redisUrl).toBe('redis+cluster://:secret@127.0.0.1:7000,127.0.0.1:7001');
  });

  it('keeps a single server and a prefix without a hash tag working as before', () => {
    const config = loadConfig({ QUEUE_PREFIX: 'clipline' });
    expect({ redisUrl: config.redisUrl, queuePrefix: config.queuePrefix }).toEqual({ redisUrl: 'redis://127.0.0.1:6379', queuePrefix: 'clipline' });
  });

  it('refuses a prefix without a hash tag on a cluster, naming the fix', () => {
    expect(configError({ REDIS_URL: 'redis+cluster://127.0.0.1:7000', QUEUE_PREFIX: 'clipline' })).toMatch(
      /QUEUE_PREFIX: needs a hash tag on a Redis Cluster, e\.g\. \{clipline\}/,
    );
    expect(configError({ REDIS_CLUSTER_NODES: '127.0.0.1:7000', QUEUE_PREFIX: 'eu-{}' })).toMatch(/QUEUE_PREFIX: needs a hash tag/);
  });

  it('refuses a cluster named twice, malformed nodes and cluster URLs, never echoing them', () => {
    expect(configError({ REDIS_URL: 'redis+cluster://127.0.0.1:7000', REDIS_CLUSTER_NODES: '127.0.0.1:7001' })).toMatch(
      /REDIS_CLUSTER_NODES: names a cluster that REDIS_URL already names: set one of them/,
    );
    expect(configError({ REDIS_CLUSTER_NODES: '127.0.0.1:7000,not a node' })).toMatch(
      /REDIS_CLUSTER_NODES="127\.0\.0\.1:7000,not a node": expected host:port,host:port/,
    );
    const message = configError({ REDIS_URL: 'redis+cluster://user:hunter2@127.0.0.1:7000/3' });
    expect(message).toMatch(/REDIS_URL: expected a redis:\/\/ or rediss:\/\/ URL, or redis\+cluster:\/\/host:port,host:port/);
    expect(message).not.toMatch(/hunter2/);
  });
});

describe('clusterOptions', () => {
  const target = { nodes: [{ host: '127.0.0.1', port: 7000 }], username: 'app', password: 'secret', tls: true };

  it('gives producers no offline queue and a short failover budget, workers blocking commands and a long one', () => {
    const producer = clusterOptions('producer', target);
    const worker = clusterOptions('worker', target);
    expect(producer).toMatchObject({ enableOfflineQueue: false, redisOptions: { maxRetriesPerRequest: 1, username: 'app', password: 'secret', tls: {} } });
    expect(worker).toMatchObject({ redisOptions: { maxRetriesPerRequest: null, username: 'app', password: 'secret', tls: {} } });
    expect(worker.enableOfflineQueue).toBeUndefined();
    const budget = (options: typeof producer) => (options.maxRedirections ?? 0) * (options.retryDelayOnFailover ?? 0);
    expect(budget(producer)).toBeLessThanOrEqual(2000);
    expect(budget(worker)).toBeGreaterThanOrEqual(15_000);
  });
});
