/**
 * The KEDA ScaledObjects of infra/k8s: one prometheus trigger each, whose PromQL query sums the
 * dashboard's gauge clipline_queue_jobs{queue,state} over the queues each worker must follow (the
 * queue names from the queue declarations and the workers' sources, the states from what the
 * gauge reports), worker-cpu waking on every queue it consumes and sleeping at zero, worker-io
 * following ingest, the AI queues and notify, at the Prometheus each overlay names. The queries
 * are evaluated by promtool on series as one or two dashboards report them, and the replica count
 * KEDA's HPA computes from the value follows the backlog (AverageValue: ceil(value / threshold),
 * clamped to min and max, zero at the activation threshold). The same queries on a real
 * Prometheus scraping a real dashboard: k8s-autoscaling-prometheus.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import * as queues from '../../packages/shared/src/queues/index.js';
import type { K8sObject } from './support/kustomize.js';
import { cpuQueues, consumedQueues, desiredReplicas, ioScaledQueues, prometheusTool, type ScaledSpec, specOf, triggerOf } from './support/keda.js';
import { configData, find, ofKind, RENDERS, type RenderName, rendered } from './support/manifests.js';
import { readText } from './support/workspace.js';

/** The states clipline_queue_jobs reports, from the counts the dashboard reads. */
const GAUGE_STATES = [...(/getJobCounts\(([^)]*)\)/.exec(readText('packages/shared/src/jobs/queue-registry.ts'))?.[1] ?? '').matchAll(/'([\w-]+)'/g)].map(
  ([, state]) => state!,
);
const RUNNING_OR_WAITING = ['active', 'prioritized', 'waiting'];

interface Selector {
  queues: string[];
  states: string[];
}

/** The clipline_queue_jobs selectors of a query, each with the queues and states it matches. */
function selectors(query: string): Selector[] {
  return [...query.matchAll(/clipline_queue_jobs\{([^}]*)\}/g)].map(([, body]) => {
    const matchers = Object.fromEntries(
      [...body!.matchAll(/(\w+)\s*(=~|=)\s*"([^"]*)"/g)].map(([, label, operator, value]) => [label!, operator === '=~' ? value!.split('|') : [value!]]),
    );
    expect(Object.keys(matchers).sort()).toEqual(['queue', 'state']);
    for (const name of [...matchers.queue!, ...matchers.state!]) expect(name).toMatch(/^[\w-]+$/);
    return { queues: [...matchers.queue!].sort(), states: [...matchers.state!].sort() };
  });
}

/** Each selector is collapsed to one series per queue (and state) before anything adds it up. */
function expectDeduplicated(query: string): void {
  const guarded = query.match(/max by \(queue(?:, state)?\) \(clipline_queue_jobs\{/g) ?? [];
  expect(guarded.length).toBe(selectors(query).length);
}

const renders: { render: RenderName }[] = RENDERS.map((render) => ({ render }));

describe.each(renders)('the $render ScaledObjects', ({ render }) => {
  const objects = rendered(render);
  const config = configData(objects);

  it('target the worker Deployments, which leave their replica count to KEDA, with one prometheus trigger each', () => {
    expect(
      ofKind(objects, 'ScaledObject')
        .map((object) => object.metadata.name)
        .sort(),
    ).toEqual(['worker-cpu', 'worker-io']);
    expect(ofKind(objects, 'TriggerAuthentication')).toEqual([]);
    for (const name of ['worker-cpu', 'worker-io']) {
      const spec = specOf(objects, name);
      expect(spec.scaleTargetRef.name).toBe(name);
      expect((find(objects, 'Deployment', name).spec as { replicas?: number }).replicas).toBeUndefined();
      expect(spec.maxReplicaCount).toBeGreaterThanOrEqual(Math.max(spec.minReplicaCount, 2));
      expect(spec.advanced?.scalingModifiers).toBeUndefined();
      expect(spec.triggers).toHaveLength(1);
      const [trigger] = spec.triggers;
      expect([name, trigger!.type, trigger!.metricType, trigger!.authenticationRef]).toEqual([name, 'prometheus', 'AverageValue', undefined]);
      // An empty result (no dashboard scraped) is an error that keeps the replicas, never a zero.
      // No fallback: KEDA's scales to exactly its count, which would shrink busy workers to it.
      expect([name, trigger!.metadata.ignoreNullValues, trigger!.metadata.activationThreshold]).toEqual([name, 'false', '0']);
      expect([name, spec.fallback]).toEqual([name, undefined]);
      expectDeduplicated(trigger!.metadata.query);
      for (const selector of selectors(trigger!.metadata.query)) expect(GAUGE_STATES).toEqual(expect.arrayContaining(selector.states));
    }
  });

  it('scale worker-cpu on every queue it consumes, analyze and render among them, a delayed job adding at most one, down to zero', () => {
    expect(cpuQueues).toEqual(expect.arrayContaining(['analyze', 'render']));
    const spec = specOf(objects, 'worker-cpu');
    expect(spec.minReplicaCount).toBe(0);
    const { query, threshold } = spec.triggers[0]!.metadata;
    expect(selectors(query)).toEqual([
      { queues: [...cpuQueues].sort(), states: RUNNING_OR_WAITING },
      { queues: [...cpuQueues].sort(), states: ['delayed'] },
    ]);
    expect(query).toMatch(/ \+ \(clamp_max\(sum\(max by \(queue\) \(clipline_queue_jobs\{[^}]*\}\)\), 1\) or vector\(0\)\)$/);
    expect(threshold).toBe(config.WORKER_CPU_CONCURRENCY);
  });

  it('scale worker-io on ingest, every AI queue and notify, never below one replica', () => {
    expect(ioScaledQueues.length).toBeGreaterThanOrEqual(5);
    expect(consumedQueues('apps/worker-io/src/io-worker.ts')).toEqual(expect.arrayContaining(ioScaledQueues));
    const spec = specOf(objects, 'worker-io');
    expect(spec.minReplicaCount).toBeGreaterThanOrEqual(1);
    const { query, threshold } = spec.triggers[0]!.metadata;
    expect(selectors(query)).toEqual([{ queues: [...ioScaledQueues].sort(), states: RUNNING_OR_WAITING }]);
    expect(query).toMatch(/^sum\(max by \(queue, state\) \(clipline_queue_jobs\{[^}]*\}\)\)$/);
    expect(threshold).toBe(config.WORKER_IO_CONCURRENCY);
  });

  it('ask the Prometheus the overlay names (none in the base), the same for both workers', () => {
    const addresses = ['worker-cpu', 'worker-io'].map((name) => triggerOf(objects, name).metadata.serverAddress);
    if (render === 'base') expect(addresses).toEqual([undefined, undefined]);
    else expect(new Set(addresses).size).toBe(1);
    if (render === 'prod') expect(addresses[0]).toMatch(/^https?:\/\/[\w.-]+(:\d+)?$/);
    if (render === 'dev') expectDevPrometheus(objects, addresses[0]!);
  });
});

/** dev: the address is the namespace's Prometheus, by full name (KEDA asks from its own namespace), which scrapes the dashboard Service. */
function expectDevPrometheus(objects: K8sObject[], address: string): void {
  const service = find(objects, 'Service', 'prometheus');
  const port = (service.spec as { ports: { port: number }[] }).ports[0]!.port;
  expect(address).toBe(`http://prometheus.${service.metadata.namespace}.svc.cluster.local:${port}`);
  const pod = (find(objects, 'Deployment', 'prometheus').spec as any).template.spec;
  const configMap = pod.volumes.find((volume: { configMap?: { name: string } }) => volume.configMap)?.configMap.name;
  const scrape = parseYaml(configData(objects, configMap)['prometheus.yml']!) as {
    scrape_configs: { job_name: string; static_configs?: { targets: string[] }[] }[];
  };
  const dashboard = (find(objects, 'Service', 'dashboard').spec as { ports: { port: number }[] }).ports[0]!.port;
  expect(dashboard).toBe(Number(configData(objects).DASHBOARD_PORT));
  const targets = scrape.scrape_configs.flatMap((job) => (job.static_configs ?? []).flatMap((group) => group.targets));
  expect(targets).toContain(`dashboard:${dashboard}`);
}

type Counts = Record<string, Record<string, number>>;
interface Case {
  name: string;
  /** Jobs per queue and state; undefined: no dashboard is scraped at all. */
  counts?: Counts;
  dashboards?: number;
  /** States the dashboard does not report (their series are absent). */
  absent?: string[];
  value: number | undefined;
}

/** The series one or more dashboards expose for `counts`: every queue and state, zeros included. */
function inputSeries({ counts, dashboards = 1, absent = [] }: Case): { series: string; values: string }[] {
  if (!counts) return [{ series: 'up{job="dashboard"}', values: '0' }];
  return Array.from({ length: dashboards }, (_, index) =>
    queues.allQueues.flatMap(({ name: queue }) =>
      GAUGE_STATES.filter((state) => !absent.includes(state)).map((state) => ({
        series: `clipline_queue_jobs{instance="dashboard-${index}:3001",job="dashboard",queue="${queue}",state="${state}"}`,
        values: String(counts[queue]?.[state] ?? 0),
      })),
    ),
  ).flat();
}

/** Runs promtool's unit tests of `query` over the cases: each case's value, or no result. */
function expectPromtoolValues(query: string, cases: Case[]): void {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'clipline-promql-'));
  try {
    const tests = cases.map((testCase) => ({
      name: testCase.name,
      interval: '1m',
      input_series: inputSeries(testCase),
      promql_expr_test: [{ expr: query, eval_time: '0m', exp_samples: testCase.value === undefined ? [] : [{ labels: '{}', value: testCase.value }] }],
    }));
    writeFileSync(path.join(dir, 'tests.yml'), stringifyYaml({ rule_files: [], evaluation_interval: '1m', tests }));
    const run = spawnSync(prometheusTool('promtool'), ['test', 'rules', 'tests.yml'], { cwd: dir, encoding: 'utf8' });
    expect([run.status, `${run.stdout}${run.stderr}`]).toEqual([0, expect.stringContaining('SUCCESS')]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('the scaling queries, evaluated by promtool', () => {
  const byRender = RENDERS.map((render) => ({ render, objects: rendered(render) }));
  const query = (name: string) => triggerOf(byRender[0]!.objects, name).metadata.query;
  const replicas = (name: string, value: number | undefined) => byRender.map(({ objects }) => desiredReplicas(specOf(objects, name), value));
  const bounds = (name: string, wanted: (spec: ScaledSpec) => number) => byRender.map(({ objects }) => wanted(specOf(objects, name)));

  it('are the same in every render', () => {
    for (const name of ['worker-cpu', 'worker-io']) expect(new Set(byRender.map(({ objects }) => triggerOf(objects, name).metadata.query)).size).toBe(1);
  });

  it('ask worker-cpu for its waiting and running jobs per replica, one more for delayed ones, zero when idle', () => {
    const per = Number(triggerOf(byRender[0]!.objects, 'worker-cpu').metadata.threshold);
    const mixed = { analyze: { waiting: 2, prioritized: per * 2 }, render: { prioritized: per } };
    const ignored = { persist: { waiting: 100 }, analyze: { completed: 500, failed: 20, 'waiting-children': 3 }, pipeline: { 'waiting-children': 9 } };
    expectPromtoolValues(query('worker-cpu'), [
      { name: 'idle', counts: {}, value: 0 },
      { name: 'other queues and finished jobs', counts: ignored, value: 0 },
      { name: 'delayed only', counts: { analyze: { delayed: 40 }, render: { delayed: 3 } }, value: 1 },
      { name: 'one registration', counts: { accounts: { waiting: 1 } }, value: 1 },
      { name: 'mixed', counts: mixed, value: 2 + per * 3 },
      { name: 'mixed, two dashboards scraped', counts: mixed, dashboards: 2, value: 2 + per * 3 },
      { name: 'no delayed series', counts: mixed, absent: ['delayed'], value: 2 + per * 3 },
      { name: 'running with delayed', counts: { analyze: { active: per * 2, delayed: 5 } }, value: per * 2 + 1 },
      { name: 'no dashboard scraped', value: undefined },
    ]);
    expect(replicas('worker-cpu', 0)).toEqual([0, 0, 0]);
    expect(replicas('worker-cpu', 1)).toEqual([1, 1, 1]);
    expect(replicas('worker-cpu', 2 + per * 3)).toEqual(bounds('worker-cpu', (spec) => Math.min(spec.maxReplicaCount, Math.ceil((2 + per * 3) / per))));
    expect(replicas('worker-cpu', per * 2)).toEqual([2, 2, 2]);
    expect(replicas('worker-cpu', 10_000)).toEqual(bounds('worker-cpu', (spec) => spec.maxReplicaCount));
    expect(replicas('worker-cpu', undefined)).toEqual([undefined, undefined, undefined]);
  });

  it('ask worker-io for its waiting and running jobs per replica, never fewer than its minimum', () => {
    const per = Number(triggerOf(byRender[0]!.objects, 'worker-io').metadata.threshold);
    const mixed = { ingest: { waiting: per }, 'ai-openai': { prioritized: per }, notify: { active: 1, delayed: 7 } };
    expectPromtoolValues(query('worker-io'), [
      { name: 'idle', counts: {}, value: 0 },
      {
        name: 'other queues, delayed and finished jobs',
        counts: { analyze: { waiting: 90 }, persist: { active: 4 }, ingest: { delayed: 8, completed: 70 } },
        value: 0,
      },
      { name: 'mixed', counts: mixed, value: per * 2 + 1 },
      { name: 'mixed, two dashboards scraped', counts: mixed, dashboards: 2, value: per * 2 + 1 },
      { name: 'a flood of speech', counts: { 'ai-elevenlabs': { waiting: 1_000_000 } }, value: 1_000_000 },
      { name: 'no dashboard scraped', value: undefined },
    ]);
    expect(replicas('worker-io', 0)).toEqual(bounds('worker-io', (spec) => spec.minReplicaCount));
    expect(replicas('worker-io', per * 2 + 1)).toEqual(bounds('worker-io', (spec) => Math.max(spec.minReplicaCount, Math.min(spec.maxReplicaCount, 3))));
    expect(replicas('worker-io', 1_000_000)).toEqual(bounds('worker-io', (spec) => spec.maxReplicaCount));
  });
});
