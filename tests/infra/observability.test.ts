/**
 * infra/observability: the Prometheus configuration, the alert rules with their promtool unit
 * tests, and the Grafana dashboard. A real Prometheus loads the rules and scrapes a real worker's
 * and the dashboard's metrics; every alert expression and every dashboard query is evaluated by
 * it, and every metric they name is one the code exports.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import {
  BreakerBoard,
  createLogger,
  createMetricsRegistry,
  defineQueue,
  JobQueues,
  type RedisClient,
  type RunningWorker,
  standardRetention,
  startWorker,
} from '@clipline/shared';
import { Queue } from 'bullmq';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { registerClusterMetrics } from '../../apps/dashboard/src/cluster-metrics.js';
import { prometheusBinary, type RunningPrometheus, startPrometheus } from '../helpers/prometheus.js';
import { connectRedis, createTestEnvironment, type TestEnvironment, waitFor } from '../helpers/services.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const DIR = path.join(ROOT, 'infra/observability');
const read = (file: string) => readFileSync(path.join(DIR, file), 'utf8');

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels: { severity: string };
  annotations: { summary: string; description: string };
}
const rules = (parseYaml(read('alerts.yml')) as { groups: { name: string; rules: Rule[] }[] }).groups.flatMap((group) => group.rules);
interface Panel {
  id: number;
  title: string;
  datasource: { uid: string };
  targets: { expr: string; datasource: { uid: string } }[];
}
const dashboard = JSON.parse(read('grafana/dashboards/clipline.json')) as { uid: string; panels: Panel[]; templating: { list: { name: string }[] } };
const dashboardQueries = dashboard.panels.flatMap((panel) => panel.targets.map((target) => ({ panel: panel.title, expr: target.expr })));

/** Metric names an expression reads: identifiers followed by `{`, `[` or a closing parenthesis, minus PromQL's own words. */
function metricsIn(expr: string): string[] {
  const words = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'le']);
  const names = [...expr.matchAll(/\b([a-z_][a-z0-9_]*)\b(?=\s*(\{|\)|\[|\s*[><=!]|$))/g)].map((match) => match[1]!);
  return [...new Set(names.filter((name) => !words.has(name) && /_/.test(name) && !/^(histogram_quantile|label_values|clamp_min|clamp_max)$/.test(name)))];
}

/** Names the code registers: every quoted `clipline_…` in the sources, and prom-client's defaults. */
function exportedMetrics(): Set<string> {
  const names = new Set<string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir)) {
      const full = path.join(dir, entry);
      if (statSync(full).isDirectory()) walk(full);
      else if (full.endsWith('.ts')) for (const match of readFileSync(full, 'utf8').matchAll(/'(clipline_[a-z0-9_]+)'/g)) names.add(match[1]!);
    }
  };
  for (const dir of ['packages/shared/src', 'apps/producer/src', 'apps/worker-io/src', 'apps/worker-cpu/src', 'apps/dashboard/src']) walk(path.join(ROOT, dir));
  return names;
}
const withoutSuffix = (name: string) => name.replace(/_(bucket|sum|count)$/, '');

describe('the alert rules', () => {
  it('cover what operators must hear about: backlog age, queue metrics gone, failure ratio, stalls, breakers, Redis memory, database time, event-loop lag', () => {
    expect(rules.map((rule) => rule.alert).sort()).toEqual([
      'CliplineBreakerOpen',
      'CliplineDatabaseSlow',
      'CliplineEventLoopLag',
      'CliplineJobFailureRatio',
      'CliplineJobsStalling',
      'CliplineQueueBacklogAging',
      'CliplineQueueMetricsAbsent',
      'CliplineRedisMemoryHigh',
    ]);
    for (const rule of rules)
      expect([rule.alert, Boolean(rule.labels.severity && rule.annotations.summary && rule.annotations.description)]).toEqual([rule.alert, true]);
  });

  it('pass promtool check rules, its unit tests (each alert firing and silent), and check config', () => {
    const promtool = prometheusBinary('promtool');
    const run = (...args: string[]) => execFileSync(promtool, args, { cwd: DIR, encoding: 'utf8', stdio: 'pipe' });
    expect(run('check', 'rules', 'alerts.yml')).toMatch(/SUCCESS: 8 rules found/);
    expect(run('test', 'rules', 'alerts.test.yml')).toMatch(/SUCCESS/);
    expect(run('check', 'config', 'prometheus.yml')).toMatch(/SUCCESS/);
    const tested = [...read('alerts.test.yml').matchAll(/alertname: (\w+)/g)].map((match) => match[1]);
    expect(rules.filter((rule) => !tested.includes(rule.alert))).toEqual([]);
  });
});

describe('the Grafana dashboard', () => {
  it('is provisioned with the data source its panels name, one id per panel', () => {
    const source = parseYaml(read('grafana/provisioning/datasources/prometheus.yml')) as { datasources: { uid: string; url: string }[] };
    const uid = source.datasources[0]!.uid;
    expect(new Set(dashboard.panels.map((panel) => panel.id)).size).toBe(dashboard.panels.length);
    for (const panel of dashboard.panels) {
      expect([panel.title, panel.datasource.uid, ...panel.targets.map((target) => target.datasource.uid)]).toEqual([
        panel.title,
        ...Array(panel.targets.length + 1).fill(uid),
      ]);
    }
    const provider = parseYaml(read('grafana/provisioning/dashboards/clipline.yml')) as { providers: { options: { path: string } }[] };
    expect(provider.providers[0]!.options.path).toBe('/var/lib/grafana/dashboards');
  });

  it('shows queue depth and throughput, wait and processing percentiles, breakers, event-loop lag and database time', () => {
    const all = dashboardQueries.map((query) => query.expr).join('\n');
    for (const metric of [
      'clipline_queue_jobs',
      'clipline_jobs_completed_total',
      'clipline_job_wait_seconds_bucket',
      'clipline_job_processing_seconds_bucket',
      'clipline_breaker_state',
      'nodejs_eventloop_lag_p99_seconds',
      'clipline_db_query_duration_seconds_bucket',
    ]) {
      expect([metric, all.includes(metric)]).toEqual([metric, true]);
    }
  });
});

it('names only metrics the code exports, in rules and panels', () => {
  const exported = exportedMetrics();
  const named = [...rules.map((rule) => rule.expr), ...dashboardQueries.map((query) => query.expr)].flatMap(metricsIn).map(withoutSuffix);
  expect(named.length).toBeGreaterThan(15);
  expect([...new Set(named.filter((name) => !exported.has(name) && !name.startsWith('nodejs_')))]).toEqual([]);
});

describe('on a real Prometheus', () => {
  const queue = defineQueue({
    name: 'test-observed',
    resourceClass: 'io',
    jobs: { step: z.strictObject({ n: z.number() }) },
    defaultJobOptions: { attempts: 1, ...standardRetention },
  });
  let env: TestEnvironment;
  let redis: RedisClient;
  let worker: RunningWorker;
  let jobs: JobQueues;
  let server: http.Server;
  let prometheus: RunningPrometheus;
  let observed: Queue;

  beforeAll(async () => {
    env = await createTestEnvironment();
    redis = connectRedis(env.config.redisUrl);
    jobs = new JobQueues({ connection: redis, prefix: env.config.queuePrefix });
    // One process's registry holding what a worker and the dashboard export.
    const registry = createMetricsRegistry('worker-io');
    const logger = createLogger({ name: 'test', level: 'silent' });
    worker = startWorker(
      queue,
      { step: async (job) => job.data.n },
      { connection: redis, prefix: env.config.queuePrefix, logger, concurrency: 5, metrics: registry },
    );
    observed = new Queue('test-observed', { connection: redis, prefix: env.config.queuePrefix });
    registerClusterMetrics(registry, [observed], new BreakerBoard(redis, env.config.queuePrefix), redis);
    server = http.createServer((_req, res) => {
      registry.metrics().then((text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const target = `127.0.0.1:${(server.address() as { port: number }).port}`;
    prometheus = await startPrometheus(
      {
        global: { scrape_interval: '1s', evaluation_interval: '1s' },
        rule_files: ['alerts.yml'],
        scrape_configs: [{ job_name: 'clipline', static_configs: [{ targets: [target] }] }],
      },
      [path.join(DIR, 'alerts.yml')],
    );
    for (let n = 0; n < 20; n++) await jobs.add(queue, 'step', { n });
  }, 60_000);

  afterAll(async () => {
    await prometheus?.close();
    server?.closeAllConnections();
    server?.close();
    await worker?.close();
    await observed?.close();
    await jobs?.close();
    redis?.disconnect();
    await env?.cleanup();
  });

  it('loads every alert rule, healthy', async () => {
    const loaded = await waitFor(
      async () => {
        const groups = await prometheus.rules();
        const all = groups.flatMap((group) => group.rules);
        return all.length === rules.length && all.every((rule) => rule.health === 'ok') ? all : undefined;
      },
      30_000,
      'every rule evaluated once',
    );
    expect(loaded.map((rule) => rule.name).sort()).toEqual(rules.map((rule) => rule.alert).sort());
  });

  it('scrapes the job counters and timings of the worker that ran the jobs', async () => {
    const completed = await waitFor(
      async () => {
        const [sample] = await prometheus.query('sum(clipline_jobs_completed_total{queue="test-observed"})');
        return sample?.value === 20 ? sample.value : undefined;
      },
      30_000,
      'twenty completions scraped',
    );
    expect(completed).toBe(20);
    const [timed] = await prometheus.query('sum(clipline_job_processing_seconds_count{queue="test-observed"})');
    expect(timed?.value).toBe(20);
  });

  it('evaluates every dashboard query as Grafana sends it', async () => {
    for (const { panel, expr } of dashboardQueries) {
      const concrete = expr.replaceAll('$queue', '.+').replaceAll('$__rate_interval', '1m');
      await expect(prometheus.query(concrete).then(() => panel)).resolves.toBe(panel);
    }
    const [depth] = await prometheus.query(dashboardQueries[0]!.expr.replaceAll('$queue', 'test-observed'));
    expect(depth?.value ?? 0).toBe(0);
  });
});
