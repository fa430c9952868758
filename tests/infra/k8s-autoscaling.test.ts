/**
 * The KEDA ScaledObjects of infra/k8s: each trigger reads a key BullMQ really writes (the key
 * names come from BullMQ's own QueueKeys, the queue names from the queue declarations, the prefix
 * from the rendered ConfigMap), worker-cpu wakes on every queue it consumes and may sleep at zero,
 * worker-io scales on ingest, the AI queues and notify, and the replica count KEDA computes from
 * the scaling formula follows the backlog: evaluated here for given queue contents exactly as
 * KEDA's HPA would (AverageValue: ceil(formula / target), clamped to min and max, zero below the
 * activation target).
 */
import { mkdtempSync, cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { QueueKeys } from 'bullmq';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import * as queues from '../../packages/shared/src/queues/index.js';
import { type K8sObject, renderKustomization } from './support/kustomize.js';
import { configData, find, K8S_DIR, kustomizationDir, ofKind, RENDERS, type RenderName, rendered } from './support/manifests.js';
import { readText } from './support/workspace.js';

interface Trigger {
  type: string;
  name: string;
  authenticationRef?: { name: string };
  metadata: { listName: string };
}
interface ScaledSpec {
  scaleTargetRef: { name: string };
  minReplicaCount: number;
  maxReplicaCount: number;
  triggers: Trigger[];
  advanced: { scalingModifiers: { formula: string; target: string; activationTarget: string; metricType: string } };
}
const specOf = (objects: K8sObject[], name: string) => find(objects, 'ScaledObject', name).spec as unknown as ScaledSpec;

/** Names of the queues a worker starts a BullMQ Worker for, read from its source. */
function consumedQueues(source: string): string[] {
  const declarations = queues as unknown as Record<string, { name: string } | undefined>;
  return [...readText(source).matchAll(/startWorker\((\w+Queue)\b/g)].map(([, identifier]) => {
    const declaration = declarations[identifier!];
    if (!declaration) throw new Error(`${source} starts a worker for ${identifier}, which the queue declarations do not export`);
    return declaration.name;
  });
}

const cpuQueues = consumedQueues('apps/worker-cpu/src/cpu-worker.ts');
const ioScaledQueues = ['ingest', ...queues.allQueues.map((queue) => queue.name).filter((name) => name.startsWith('ai-')), 'notify'];

/** queue → lists read for it, from the triggers' keys, which must all be keys BullMQ writes under the prefix. */
function triggerKeys(spec: ScaledSpec, prefix: string): Map<string, string[]> {
  const bullmq = new QueueKeys(prefix);
  const read = new Map<string, string[]>();
  for (const trigger of spec.triggers) {
    const match = /^(.*):([^:]+):([^:]+)$/.exec(trigger.metadata.listName);
    expect([trigger.name, match?.[1]]).toEqual([trigger.name, prefix]);
    const [, , queue, list] = match!;
    expect([trigger.name, trigger.metadata.listName]).toEqual([trigger.name, bullmq.toKey(queue!, list!)]);
    expect(Object.keys(bullmq.getKeys(queue!))).toContain(list);
    read.set(queue!, [...(read.get(queue!) ?? []), list!]);
  }
  return read;
}

/** The replicas KEDA asks for, given each trigger's value (a list's length, a sorted set's size). */
function desiredReplicas(spec: ScaledSpec, values: Record<string, number>): number {
  const { formula, target, activationTarget } = spec.advanced.scalingModifiers;
  // The formulas use +, comparison, parentheses and ?: on trigger names: the same in KEDA's expression language and JavaScript.
  expect(formula).toMatch(/^[\w\s+()>?:.0-9]+$/);
  const names = spec.triggers.map((trigger) => trigger.name);
  const metric = new Function(...names, `return (${formula});`)(...names.map((name) => values[name] ?? 0)) as number;
  if (metric <= Number(activationTarget)) return spec.minReplicaCount;
  return Math.min(spec.maxReplicaCount, Math.max(spec.minReplicaCount, 1, Math.ceil(metric / Number(target))));
}

const renders: { render: RenderName }[] = RENDERS.map((render) => ({ render }));

describe.each(renders)('the $render ScaledObjects', ({ render }) => {
  const objects = rendered(render);
  const config = configData(objects);
  const prefix = config.QUEUE_PREFIX!;

  it('target the worker Deployments, which leave their replica count to KEDA, through a TriggerAuthentication that exists', () => {
    expect(
      ofKind(objects, 'ScaledObject')
        .map((object) => object.metadata.name)
        .sort(),
    ).toEqual(['worker-cpu', 'worker-io']);
    for (const name of ['worker-cpu', 'worker-io']) {
      const spec = specOf(objects, name);
      expect(spec.scaleTargetRef.name).toBe(name);
      expect((find(objects, 'Deployment', name).spec as { replicas?: number }).replicas).toBeUndefined();
      expect(spec.maxReplicaCount).toBeGreaterThanOrEqual(Math.max(spec.minReplicaCount, 2));
      expect(spec.advanced.scalingModifiers.metricType).toBe('AverageValue');
      for (const trigger of spec.triggers) {
        expect([trigger.name, trigger.type]).toEqual([trigger.name, 'redis']);
        find(objects, 'TriggerAuthentication', trigger.authenticationRef!.name);
      }
    }
  });

  it('scale worker-cpu on every queue it consumes, analyze and render among them, down to zero replicas', () => {
    expect(cpuQueues).toEqual(expect.arrayContaining(['analyze', 'render']));
    const spec = specOf(objects, 'worker-cpu');
    expect(spec.minReplicaCount).toBe(0);
    const read = triggerKeys(spec, prefix);
    expect([...read.keys()].sort()).toEqual([...cpuQueues].sort());
    for (const queue of cpuQueues) expect([queue, read.get(queue)!.sort()]).toEqual([queue, ['active', 'delayed', 'prioritized', 'wait']]);
    expect(spec.advanced.scalingModifiers.target).toBe(config.WORKER_CPU_CONCURRENCY);
  });

  it('scale worker-io on ingest, every AI queue and notify, never below one replica', () => {
    expect(ioScaledQueues.length).toBeGreaterThanOrEqual(5);
    const consumed = consumedQueues('apps/worker-io/src/io-worker.ts');
    expect(consumed).toEqual(expect.arrayContaining(ioScaledQueues));
    const spec = specOf(objects, 'worker-io');
    expect(spec.minReplicaCount).toBeGreaterThanOrEqual(1);
    const read = triggerKeys(spec, prefix);
    expect([...read.keys()].sort()).toEqual([...ioScaledQueues].sort());
    for (const queue of ioScaledQueues) expect([queue, read.get(queue)!.sort()]).toEqual([queue, ['active', 'prioritized', 'wait']]);
    expect(spec.advanced.scalingModifiers.target).toBe(config.WORKER_IO_CONCURRENCY);
  });
});

describe.each(renders)('the $render scaling formulas', ({ render }) => {
  const objects = rendered(render);

  it('ask for the replicas the backlog needs: waiting and prioritized jobs per replica, running ones kept, delayed ones waking a sleeping worker', () => {
    const cpu = specOf(objects, 'worker-cpu');
    const perCpu = Number(cpu.advanced.scalingModifiers.target);
    expect(desiredReplicas(cpu, {})).toBe(0);
    expect(desiredReplicas(cpu, { analyze_delayed: 40 })).toBe(1);
    expect(desiredReplicas(cpu, { accounts_wait: 1 })).toBe(1);
    expect(desiredReplicas(cpu, { analyze_wait: 2, analyze_prioritized: perCpu * 2, render_prioritized: perCpu })).toBe(
      Math.min(cpu.maxReplicaCount, Math.ceil((2 + perCpu * 3) / perCpu)),
    );
    expect(desiredReplicas(cpu, { analyze_active: perCpu * 2 })).toBe(2);
    expect(desiredReplicas(cpu, { render_wait: 10_000 })).toBe(cpu.maxReplicaCount);
    const io = specOf(objects, 'worker-io');
    const perIo = Number(io.advanced.scalingModifiers.target);
    expect(desiredReplicas(io, {})).toBe(io.minReplicaCount);
    expect(desiredReplicas(io, { ingest_wait: perIo, ai_openai_prioritized: perIo, notify_active: 1 })).toBe(
      Math.max(io.minReplicaCount, Math.min(io.maxReplicaCount, 3)),
    );
    expect(desiredReplicas(io, { ai_elevenlabs_wait: 1_000_000 })).toBe(io.maxReplicaCount);
  });

  it('use one formula term per trigger, each once', () => {
    for (const name of ['worker-cpu', 'worker-io']) {
      const spec = specOf(objects, name);
      const terms = spec.advanced.scalingModifiers.formula.match(/[A-Za-z_]\w*/g) ?? [];
      expect([name, [...terms].sort()]).toEqual([name, spec.triggers.map((trigger) => trigger.name).sort()]);
    }
  });
});

describe('QUEUE_PREFIX', () => {
  it.each(['dev', 'prod'] as const)('is set in one place: the %s overlay given another prefix reads the keys under it', (overlay) => {
    const copy = mkdtempSync(path.join(os.tmpdir(), 'clipline-k8s-prefix-'));
    try {
      cpSync(K8S_DIR, copy, { recursive: true });
      const file = path.join(kustomizationDir(overlay, copy), 'kustomization.yaml');
      const kustomization = parseYaml(readFileSync(file, 'utf8')) as { patches: { patch?: string }[] };
      const prefix = 'tenant-a:{clipline}';
      kustomization.patches.push({
        patch: stringifyYaml({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'clipline-config' }, data: { QUEUE_PREFIX: prefix } }),
      });
      writeFileSync(file, stringifyYaml(kustomization));
      const objects = renderKustomization(kustomizationDir(overlay, copy));
      expect(configData(objects).QUEUE_PREFIX).toBe(prefix);
      const keys = ofKind(objects, 'ScaledObject').flatMap((object) =>
        (object.spec as unknown as ScaledSpec).triggers.map((trigger) => trigger.metadata.listName),
      );
      expect(keys.length).toBeGreaterThan(20);
      expect(keys.filter((key) => !key.startsWith(`${prefix}:`))).toEqual([]);
      for (const object of ofKind(objects, 'ScaledObject')) triggerKeys(object.spec as unknown as ScaledSpec, prefix);
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });
});
