/**
 * The local Redis Cluster that scripts/test-cluster.sh started, seen node by node: who holds a
 * slot, which replicas follow it, the process behind a port. A drill kills a node with SIGKILL
 * and starts it again from its own config (cluster-enabled, AOF), as an operator would.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { waitFor } from '../../helpers/services.js';

const run = promisify(execFile);

export interface ClusterNode {
  id: string;
  port: number;
  role: 'primary' | 'replica';
  /** The primary a replica follows; undefined for a primary. */
  primaryId: string | undefined;
  /** Slot ranges a primary serves, inclusive. */
  slots: [number, number][];
  /** `fail`, `pfail`, `handshake`, `noaddr`, … from CLUSTER NODES. */
  flags: string[];
}

/** One command on one node, over a connection of its own that gives up at once when the node is gone. */
async function onNode<T>(port: number, command: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis({ host: '127.0.0.1', port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, connectTimeout: 1000 });
  redis.on('error', () => {});
  try {
    await redis.connect();
    return await command(redis);
  } finally {
    redis.disconnect();
  }
}

function parseClusterNodes(text: string): ClusterNode[] {
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const [id = '', address = '', flags = '', primary = '', , , , , ...slots] = line.split(' ');
      return {
        id,
        port: Number(address.split('@')[0]?.split(':').pop()),
        role: flags.includes('master') ? 'primary' : 'replica',
        primaryId: primary === '-' ? undefined : primary,
        slots: slots
          .filter((slot) => !slot.startsWith('['))
          .map((slot) => {
            const [from, to = from] = slot.split('-');
            return [Number(from), Number(to)] as [number, number];
          }),
        flags: flags.split(',').filter((flag) => !['master', 'slave', 'myself'].includes(flag)),
      };
    });
}

export class LocalCluster {
  constructor(
    /** Every node's port, as the cluster URL names them. */
    readonly ports: readonly number[],
    /** The script's directory: `<port>/redis.conf` and `<port>/redis.pid` of each node. */
    private readonly dir: string,
  ) {}

  /** The slot a key (or a key prefix with a hash tag) hashes to, as the cluster computes it. */
  async slotOf(key: string): Promise<number> {
    return this.ask((redis) => redis.cluster('KEYSLOT', key) as Promise<number>);
  }

  /** The cluster's view of its nodes, from the first node that answers (its own view of failures included). */
  async nodes(askPort?: number): Promise<ClusterNode[]> {
    const text =
      askPort === undefined
        ? await this.ask((redis) => redis.cluster('NODES') as Promise<string>)
        : await onNode(askPort, (redis) => redis.cluster('NODES') as Promise<string>);
    return parseClusterNodes(text);
  }

  /** The healthy primary serving `slot`. */
  async primaryOf(slot: number): Promise<ClusterNode> {
    const primary = (await this.nodes()).find(
      (node) => node.role === 'primary' && !node.flags.includes('fail') && node.slots.some(([from, to]) => slot >= from && slot <= to),
    );
    if (!primary) throw new Error(`no healthy primary serves slot ${slot}`);
    return primary;
  }

  async replicasOf(primary: ClusterNode): Promise<ClusterNode[]> {
    return (await this.nodes()).filter((node) => node.primaryId === primary.id);
  }

  /** The redis-server process behind `port`, as the node itself reports it. */
  async pidOf(port: number): Promise<number> {
    const info = await onNode(port, (redis) => redis.info('server'));
    const pid = Number(/^process_id:(\d+)/m.exec(info)?.[1]);
    const recorded = Number((await readFile(path.join(this.dir, String(port), 'redis.pid'), 'utf8')).trim());
    if (!pid || pid !== recorded) throw new Error(`node ${port} reports pid ${pid}, its pid file ${recorded}: not a node this run started`);
    return pid;
  }

  /** SIGKILLs the node on `port` and waits until it no longer answers. */
  async kill(port: number): Promise<number> {
    const pid = await this.pidOf(port);
    process.kill(pid, 'SIGKILL');
    await waitFor(async () => ((await this.answers(port)) ? undefined : true), 10_000, `node ${port} to stop answering`);
    return pid;
  }

  /** Starts the node on `port` again from its config; its nodes.conf and AOF bring it back as it was. */
  async restart(port: number): Promise<void> {
    await run('redis-server', [path.join(this.dir, String(port), 'redis.conf')]);
    await waitFor(async () => ((await this.answers(port)) ? true : undefined), 10_000, `node ${port} to answer again`);
  }

  /** Resolves with the first of `ports` that calls itself a primary. */
  async waitForPromotion(ports: readonly number[], timeoutMs: number): Promise<number> {
    return waitFor(
      async () => {
        for (const port of ports) {
          const role = await onNode(port, (redis) => redis.role() as Promise<unknown[]>).catch(() => undefined);
          if (role?.[0] === 'master') return port;
        }
        return undefined;
      },
      timeoutMs,
      `one of ${ports.join(', ')} to be promoted to primary`,
    );
  }

  /** Waits until every node of `ports` reports cluster_state:ok. */
  async waitForStateOk(ports: readonly number[], timeoutMs: number): Promise<void> {
    await waitFor(
      async () => {
        const states = await Promise.all(ports.map((port) => onNode(port, (redis) => redis.cluster('INFO') as Promise<string>).catch(() => '')));
        return states.every((info) => /^cluster_state:ok/m.test(info)) ? true : undefined;
      },
      timeoutMs,
      `cluster_state:ok on ${ports.join(', ')}`,
    );
  }

  /** Waits until the node on `port` is a replica of `primaryPort` with its replication link up. */
  async waitForReplica(port: number, primaryPort: number, timeoutMs: number): Promise<void> {
    await waitFor(
      async () => {
        const info = await onNode(port, (redis) => redis.info('replication')).catch(() => '');
        return /^role:slave/m.test(info) && new RegExp(`^master_port:${primaryPort}\\b`, 'm').test(info) && /^master_link_status:up/m.test(info)
          ? true
          : undefined;
      },
      timeoutMs,
      `node ${port} to follow ${primaryPort} again`,
    );
  }

  /** Keys matching `pattern` on the primary at `port` (SCAN sees one node's keys only). */
  async keysOn(port: number, pattern: string): Promise<string[]> {
    return onNode(port, async (redis) => {
      const found: string[] = [];
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        found.push(...keys);
      } while (cursor !== '0');
      return found;
    });
  }

  private async answers(port: number): Promise<boolean> {
    return onNode(port, (redis) => redis.ping()).then(
      () => true,
      () => false,
    );
  }

  private async ask<T>(command: (redis: Redis) => Promise<T>): Promise<T> {
    let last: unknown;
    for (const port of this.ports) {
      try {
        return await onNode(port, command);
      } catch (error) {
        last = error;
      }
    }
    throw new Error(`no node of the cluster answers: ${(last as Error)?.message}`);
  }
}
