import { type BreakerBoard, Gauge, queueCounts, type Registry, type RedisClient } from '@clipline/shared';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { oldestWaitingAge } from './overview/overview-data.js';

/**
 * The deployment-wide gauges the dashboard serves on /metrics, read from Redis at scrape time:
 * what no single worker knows. Prometheus scrapes one dashboard replica for them; KEDA's
 * ScaledObjects and the alert rules of infra/observability read them.
 *
 * - `clipline_queue_jobs{queue,state}`: jobs per queue and state
 * - `clipline_queue_oldest_waiting_seconds{queue}`: age of the oldest job waiting (0 when none)
 * - `clipline_breaker_state{provider,process}`: 0 closed, 1 half-open, 2 open
 * - `clipline_redis_memory_used_bytes{node}` and `clipline_redis_maxmemory_bytes{node}` (0: no limit)
 */
export function registerClusterMetrics(registry: Registry, queues: readonly Queue[], breakers: BreakerBoard, redis: RedisClient): void {
  const registers = [registry];
  // Until Redis is first reached, BullMQ holds a queue's commands: a scrape would wait for it.
  // Without Redis the deployment-wide series are left out and the process's own still served.
  const reachable = () => redis.status === 'ready';
  new Gauge({
    name: 'clipline_queue_jobs',
    help: 'Jobs per queue and state, across every worker of the deployment',
    labelNames: ['queue', 'state'],
    registers,
    async collect() {
      if (!reachable()) return this.reset();
      const all = await Promise.all(queues.map(async (queue) => [queue.name, await queueCounts(queue).catch(() => ({}))] as const));
      this.reset();
      for (const [queue, counts] of all) for (const [state, count] of Object.entries(counts)) this.set({ queue, state }, count);
    },
  });
  new Gauge({
    name: 'clipline_queue_oldest_waiting_seconds',
    help: 'Age of the oldest job waiting in each queue (waiting or prioritized; 0 when none waits)',
    labelNames: ['queue'],
    registers,
    async collect() {
      if (!reachable()) return this.reset();
      const now = Date.now();
      const ages = await Promise.all(queues.map(async (queue) => [queue.name, await oldestWaitingAge(queue, now).catch(() => undefined)] as const));
      this.reset();
      for (const [queue, age] of ages) if (age !== undefined) this.set({ queue }, (age ?? 0) / 1000);
    },
  });
  new Gauge({
    name: 'clipline_breaker_state',
    help: 'Circuit breaker state per provider and worker process (0 closed, 1 half-open, 2 open)',
    labelNames: ['provider', 'process'],
    registers,
    async collect() {
      if (!reachable()) return this.reset();
      const reports = await breakers.read().catch(() => []);
      this.reset();
      for (const report of reports)
        this.set({ provider: report.provider, process: report.process }, report.state === 'open' ? 2 : report.state === 'closed' ? 0 : 1);
    },
  });
  registerRedisMemory(registers, redis);
}

/** Memory used and the maxmemory limit of each Redis primary holding the queues. */
function registerRedisMemory(registers: Registry[], redis: RedisClient): void {
  const read = async () => {
    // A cluster's deployment keys share one slot, but every primary is reported: any may fill up.
    const nodes: Redis[] = 'nodes' in redis && typeof redis.nodes === 'function' ? redis.nodes('master') : [redis as Redis];
    return Promise.all(
      nodes.map(async (node) => {
        const info = await node.info('memory');
        const field = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? Number.NaN);
        return { node: `${node.options.host ?? 'redis'}:${node.options.port ?? 6379}`, used: field('used_memory'), max: field('maxmemory') };
      }),
    ).catch(() => []);
  };
  let pending: ReturnType<typeof read> | undefined;
  // Both gauges are collected in one scrape: one INFO round per scrape serves them.
  const once = () => {
    if (redis.status !== 'ready') return Promise.resolve([]);
    pending ??= read().finally(() => setTimeout(() => (pending = undefined), 500));
    return pending;
  };
  new Gauge({
    name: 'clipline_redis_memory_used_bytes',
    help: 'Memory used by each Redis primary (INFO used_memory)',
    labelNames: ['node'],
    registers,
    async collect() {
      const nodes = await once();
      this.reset();
      for (const { node, used } of nodes) if (Number.isFinite(used)) this.set({ node }, used);
    },
  });
  new Gauge({
    name: 'clipline_redis_maxmemory_bytes',
    help: 'maxmemory of each Redis primary (0: no limit)',
    labelNames: ['node'],
    registers,
    async collect() {
      const nodes = await once();
      this.reset();
      for (const { node, max } of nodes) if (Number.isFinite(max)) this.set({ node }, max);
    },
  });
}
