/** infra/k8s rendered, and the parts of the rendered objects the tests look at. */
import path from 'node:path';
import { isObject, type JsonObject } from './patches.js';
import { type K8sObject, podTemplate, renderKustomization } from './kustomize.js';
import { ROOT } from './workspace.js';

export const K8S_DIR = path.join(ROOT, 'infra/k8s');
export const RENDERS = ['base', 'dev', 'prod'] as const;
export type RenderName = (typeof RENDERS)[number];

export function kustomizationDir(render: RenderName, root = K8S_DIR): string {
  return render === 'base' ? path.join(root, 'base') : path.join(root, 'overlays', render);
}

const cache = new Map<RenderName, K8sObject[]>();
export function rendered(render: RenderName): K8sObject[] {
  if (!cache.has(render)) cache.set(render, renderKustomization(kustomizationDir(render)));
  return structuredClone(cache.get(render)!);
}

export function ofKind(objects: K8sObject[], kind: string): K8sObject[] {
  return objects.filter((object) => object.kind === kind);
}

export function find(objects: K8sObject[], kind: string, name: string): K8sObject {
  const found = objects.find((object) => object.kind === kind && object.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name}`);
  return found;
}

/** The fields of a container the tests read (the rest stays JSON). */
export interface Container extends JsonObject {
  name: string;
  image: string;
}

export interface EnvEntry {
  name: string;
  value?: string;
  valueFrom?: {
    configMapKeyRef?: { name: string; key: string; optional?: boolean };
    secretKeyRef?: { name: string; key: string; optional?: boolean };
    resourceFieldRef?: { resource: string; containerName?: string; divisor?: string };
  };
}

export interface Workload {
  object: K8sObject;
  pod: JsonObject;
  containers: Container[];
}

export function workloads(objects: K8sObject[]): Workload[] {
  return objects.flatMap((object) => {
    const template = podTemplate(object);
    if (!template || !isObject(template.spec)) return [];
    const pod = template.spec;
    const all = [...((pod.initContainers as Container[] | undefined) ?? []), ...((pod.containers as Container[] | undefined) ?? [])];
    return [{ object, pod, containers: all }];
  });
}

/** Whether a container runs the clipline image, whatever registry and tag an overlay gives it. */
export function isCliplineImage(image: string): boolean {
  return /^(?:[^/]+\/)*clipline(?::[^/@]+)?(?:@.+)?$/.test(image);
}

/** The workloads that run a clipline process (every container of the clipline image). */
export function cliplineWorkloads(objects: K8sObject[]): Workload[] {
  return workloads(objects).filter((workload) => workload.containers.some((container) => isCliplineImage(container.image)));
}

export function configData(objects: K8sObject[], name = 'clipline-config'): Record<string, string> {
  return (find(objects, 'ConfigMap', name).data ?? {}) as Record<string, string>;
}

/** Every variable a container is given: its env entries and the keys of the ConfigMaps and Secrets it takes whole. */
export function variablesOf(container: Container, objects: K8sObject[]): Map<string, string> {
  const given = new Map<string, string>();
  for (const source of (container.envFrom as JsonObject[] | undefined) ?? []) {
    const configMap = (source.configMapRef as { name?: string } | undefined)?.name;
    const secret = (source.secretRef as { name?: string } | undefined)?.name;
    const data = configMap ? configData(objects, configMap) : secret ? ((find(objects, 'Secret', secret).stringData ?? {}) as Record<string, string>) : {};
    for (const key of Object.keys(data)) given.set(key, configMap ? `ConfigMap ${configMap}` : `Secret ${secret}`);
  }
  for (const entry of (container.env as EnvEntry[] | undefined) ?? []) {
    const from = entry.valueFrom;
    const origin = from?.secretKeyRef
      ? `Secret ${from.secretKeyRef.name}/${from.secretKeyRef.key}`
      : from?.configMapKeyRef
        ? `ConfigMap ${from.configMapKeyRef.name}/${from.configMapKeyRef.key}`
        : from?.resourceFieldRef
          ? `resource ${from.resourceFieldRef.resource}`
          : 'value';
    given.set(entry.name, origin);
  }
  return given;
}

/** CPU or memory quantity in cores or bytes (`500m`, `2`, `256Mi`, `1Gi`). */
export function quantity(value: string | number): number {
  const match = /^(\d+(?:\.\d+)?)(m|k|M|G|Ki|Mi|Gi)?$/.exec(String(value));
  if (!match) throw new Error(`unexpected quantity ${value}`);
  const unit = { m: 1e-3, k: 1e3, M: 1e6, G: 1e9, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30 }[match[2] ?? ''] ?? 1;
  return Number(match[1]) * unit;
}

/**
 * The environment the kubelet gives a container: ConfigMaps and Secrets taken whole, then its env
 * entries (values, keys of ConfigMaps and Secrets, optional ones left out when the key is
 * missing, limits.cpu rounded up). Secret keys come from `secretValue` where the manifests hold
 * no Secret (production).
 */
export function resolveEnv(container: Container, objects: K8sObject[], secretValue: (name: string, key: string) => string | undefined): Record<string, string> {
  const secretData = (name: string): Record<string, string> => {
    const secret = objects.find((object) => object.kind === 'Secret' && object.metadata.name === name);
    return (secret?.stringData ?? {}) as Record<string, string>;
  };
  const env: Record<string, string> = {};
  for (const source of (container.envFrom as JsonObject[] | undefined) ?? []) {
    const configMap = (source.configMapRef as { name?: string } | undefined)?.name;
    Object.assign(env, configMap ? configData(objects, configMap) : secretData((source.secretRef as { name: string }).name));
  }
  for (const entry of (container.env as EnvEntry[] | undefined) ?? []) {
    const { configMapKeyRef, secretKeyRef, resourceFieldRef } = entry.valueFrom ?? {};
    let value: string | undefined = entry.value;
    if (configMapKeyRef) value = configData(objects, configMapKeyRef.name)[configMapKeyRef.key];
    if (secretKeyRef) value = secretData(secretKeyRef.name)[secretKeyRef.key] ?? secretValue(secretKeyRef.name, secretKeyRef.key);
    if (resourceFieldRef) {
      const limits = (container.resources as { limits?: Record<string, string> } | undefined)?.limits;
      const limit = limits?.[resourceFieldRef.resource.replace(/^limits\./, '')];
      value = limit === undefined ? undefined : String(Math.ceil(quantity(limit) / quantity(resourceFieldRef.divisor ?? '1')));
    }
    const optional = configMapKeyRef?.optional ?? secretKeyRef?.optional ?? false;
    if (value === undefined && !optional) throw new Error(`${container.name}: ${entry.name} refers to a key that does not exist`);
    if (value !== undefined) env[entry.name] = value;
  }
  return env;
}
