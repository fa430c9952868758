/**
 * The KEDA ScaledObjects of infra/k8s as the autoscaling tests read them: their one prometheus
 * trigger, the queues each worker consumes (from its sources), and the replica count KEDA's HPA
 * asks for given the value of the trigger's query.
 */
import { spawnSync } from 'node:child_process';
import * as queues from '../../../packages/shared/src/queues/index.js';
import type { K8sObject } from './kustomize.js';
import { find } from './manifests.js';
import { readText } from './workspace.js';

export interface PrometheusTrigger {
  type: string;
  name: string;
  metricType?: string;
  authenticationRef?: { name: string };
  metadata: { serverAddress?: string; query: string; threshold: string; activationThreshold: string; ignoreNullValues?: string } & Record<string, string>;
}

export interface ScaledSpec {
  scaleTargetRef: { name: string };
  minReplicaCount: number;
  /** What KEDA keeps when the trigger fails `failureThreshold` times in a row. */
  fallback?: { failureThreshold: number; replicas: number };
  maxReplicaCount: number;
  triggers: PrometheusTrigger[];
  advanced?: Record<string, unknown>;
}

export const specOf = (objects: K8sObject[], name: string) => find(objects, 'ScaledObject', name).spec as unknown as ScaledSpec;

/** The one trigger of a ScaledObject (the tests check there is exactly one). */
export const triggerOf = (objects: K8sObject[], name: string) => specOf(objects, name).triggers[0]!;

/** Names of the queues a worker starts a BullMQ Worker for, read from its source. */
export function consumedQueues(source: string): string[] {
  const declarations = queues as unknown as Record<string, { name: string } | undefined>;
  return [...readText(source).matchAll(/startWorker\(\s*(\w+Queue)\b/g)].map(([, identifier]) => {
    const declaration = declarations[identifier!];
    if (!declaration) throw new Error(`${source} starts a worker for ${identifier}, which the queue declarations do not export`);
    return declaration.name;
  });
}

/** Every queue worker-cpu consumes: its ScaledObject wakes it for any of them. */
export const cpuQueues = consumedQueues('apps/worker-cpu/src/cpu-worker.ts');
/** The queues whose backlog sizes worker-io: ingest, every AI provider's, notify. */
export const ioScaledQueues = ['ingest', ...queues.allQueues.map((queue) => queue.name).filter((name) => name.startsWith('ai-')), 'notify'];

/**
 * The replicas KEDA and its HPA settle on for a query value (AverageValue: ceil(value /
 * threshold) within min and max; at most the activation threshold, KEDA deactivates the
 * ScaledObject, which is zero replicas when min is zero). No value (an empty result, an error
 * with ignoreNullValues "false") is undefined: KEDA keeps what runs.
 */
export function desiredReplicas(spec: ScaledSpec, value: number | undefined): number | undefined {
  if (value === undefined) return undefined;
  const { threshold, activationThreshold } = spec.triggers[0]!.metadata;
  if (spec.minReplicaCount === 0 && value <= Number(activationThreshold)) return 0;
  return Math.min(spec.maxReplicaCount, Math.max(spec.minReplicaCount, 1, Math.ceil(value / Number(threshold))));
}

/** The path of a Prometheus tool, or an error saying how to install it. */
export function prometheusTool(name: 'prometheus' | 'promtool'): string {
  const found = spawnSync(name, ['--version'], { encoding: 'utf8' });
  if (found.error || found.status !== 0) {
    throw new Error(`${name} is not installed (${found.error?.message ?? found.stderr}): apt-get install -y prometheus`);
  }
  return name;
}
