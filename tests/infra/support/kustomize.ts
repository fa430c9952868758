/**
 * Renders a kustomization the way `kustomize build` does, for the subset infra/k8s uses:
 * resources (files and other kustomizations), patches (strategic merge, or JSON patch with a
 * target; several documents per file), namespace, labels, images and replacements (with `*` over
 * list items and delimiter/index options), applied in kustomize's order. Any other field of a
 * kustomization is refused by name rather than ignored, so the manifests cannot come to rely on
 * something rendered here differently from a real kustomize.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { isObject, type Json, type JsonObject, type JsonPatchOperation, jsonPatch, strategicMerge } from './patches.js';

export interface K8sObject extends JsonObject {
  apiVersion: string;
  kind: string;
  metadata: JsonObject & { name: string; namespace?: string; labels?: Record<string, string> };
}

interface Selector {
  group?: string;
  version?: string;
  kind?: string;
  name?: string;
  namespace?: string;
  labelSelector?: string;
}

interface Kustomization {
  resources?: string[];
  namespace?: string;
  labels?: { pairs: Record<string, string>; includeSelectors?: boolean; includeTemplates?: boolean }[];
  patches?: { path?: string; patch?: string; target?: Selector }[];
  images?: { name: string; newName?: string; newTag?: string; digest?: string }[];
  replacements?: Replacement[];
}

interface Replacement {
  source: Selector & { fieldPath?: string };
  targets: { select: Selector; reject?: Selector[]; fieldPaths: string[]; options?: { delimiter?: string; index?: number; create?: boolean } }[];
}

const UNDERSTOOD = new Set(['apiVersion', 'kind', 'resources', 'namespace', 'labels', 'patches', 'images', 'replacements']);
const CLUSTER_SCOPED = new Set([
  'Namespace',
  'ClusterRole',
  'ClusterRoleBinding',
  'CustomResourceDefinition',
  'PersistentVolume',
  'StorageClass',
  'PriorityClass',
]);

export function parseYamlDocuments(text: string, source: string): Json[] {
  return parseAllDocuments(text).flatMap((document) => {
    if (document.errors.length) throw new Error(`${source}: ${document.errors[0]!.message}`);
    const value = document.toJS() as Json;
    return value === null ? [] : [value];
  });
}

function asObject(value: Json, source: string): K8sObject {
  if (
    !isObject(value) ||
    typeof value.apiVersion !== 'string' ||
    typeof value.kind !== 'string' ||
    !isObject(value.metadata) ||
    typeof value.metadata.name !== 'string'
  ) {
    throw new Error(`${source}: not a Kubernetes object (apiVersion, kind and metadata.name are required)`);
  }
  return value as K8sObject;
}

function loadKustomization(dir: string): Kustomization {
  const file = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'].map((name) => path.join(dir, name)).find((candidate) => existsSync(candidate));
  if (!file) throw new Error(`${dir} has no kustomization.yaml`);
  const [kustomization] = parseYamlDocuments(readFileSync(file, 'utf8'), file);
  if (!isObject(kustomization)) throw new Error(`${file} is not a mapping`);
  const unknown = Object.keys(kustomization).filter((field) => !UNDERSTOOD.has(field));
  if (unknown.length) throw new Error(`${file}: ${unknown.join(', ')} not supported by this renderer`);
  if ((kustomization.labels as Kustomization['labels'])?.some((label) => label.includeSelectors))
    throw new Error(`${file}: labels.includeSelectors not supported`);
  return kustomization as Kustomization;
}

function loadResource(dir: string, entry: string): K8sObject[] {
  const target = path.resolve(dir, entry);
  if (statSync(target).isDirectory()) return renderKustomization(target);
  return parseYamlDocuments(readFileSync(target, 'utf8'), target).map((value) => asObject(value, target));
}

export function idOf(object: K8sObject): string {
  return `${object.kind}/${object.metadata.namespace ?? '~'}/${object.metadata.name}`;
}

function anchored(pattern: string | undefined, value: string | undefined): boolean {
  return pattern === undefined || new RegExp(`^(?:${pattern})$`).test(value ?? '');
}

export function matches(object: K8sObject, selector: Selector): boolean {
  const [group, version] = object.apiVersion.includes('/') ? object.apiVersion.split('/') : ['', object.apiVersion];
  const labels = object.metadata.labels ?? {};
  const labelsMatch = (selector.labelSelector ?? '')
    .split(',')
    .filter((term) => term.trim())
    .every((term) => {
      const [key, value] = term.split('=').map((part) => part.trim());
      return labels[key!] === value;
    });
  return (
    labelsMatch &&
    (selector.group === undefined || selector.group === group) &&
    (selector.version === undefined || selector.version === version) &&
    anchored(selector.kind, object.kind) &&
    anchored(selector.name, object.metadata.name) &&
    anchored(selector.namespace, object.metadata.namespace)
  );
}

function applyPatches(objects: K8sObject[], patches: NonNullable<Kustomization['patches']>, dir: string): K8sObject[] {
  let result = objects;
  for (const entry of patches) {
    const source = entry.path ? path.resolve(dir, entry.path) : `${dir} (inline patch)`;
    const documents = parseYamlDocuments(entry.path ? readFileSync(source, 'utf8') : (entry.patch ?? ''), source);
    if (documents.length === 1 && Array.isArray(documents[0])) {
      if (!entry.target) throw new Error(`${source}: a JSON patch needs a target`);
      const operations = documents[0] as unknown as JsonPatchOperation[];
      const selected = result.filter((object) => matches(object, entry.target!));
      if (selected.length === 0) throw new Error(`${source}: the target selects nothing`);
      result = result.map((object) => (selected.includes(object) ? (jsonPatch(object, operations) as K8sObject) : object));
      continue;
    }
    for (const document of documents) {
      const patch = asObject(document, source);
      const selected = entry.target
        ? result.filter((object) => matches(object, entry.target!))
        : result.filter((object) => object.kind === patch.kind && object.metadata.name === patch.metadata.name && object.apiVersion === patch.apiVersion);
      if (selected.length === 0 || (!entry.target && selected.length > 1))
        throw new Error(`${source}: no single target for the patch of ${patch.kind} ${patch.metadata.name}`);
      // With a target, the patch's own apiVersion, kind and name only identify the patch: the
      // selected objects keep theirs.
      const { apiVersion: _apiVersion, kind: _kind, metadata, ...body } = patch;
      const { name: _name, namespace: _namespace, ...metadataBody } = metadata;
      const patchBody: JsonObject = entry.target ? { ...body, ...(Object.keys(metadataBody).length ? { metadata: metadataBody } : {}) } : patch;
      result = result.map((object) => (selected.includes(object) ? (strategicMerge(object, patchBody) as K8sObject) : object));
    }
  }
  return result;
}

const POD_TEMPLATE_PATHS: Record<string, string[]> = {
  Deployment: ['spec', 'template'],
  StatefulSet: ['spec', 'template'],
  DaemonSet: ['spec', 'template'],
  ReplicaSet: ['spec', 'template'],
  Job: ['spec', 'template'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template'],
};

/** The pod template of a workload (Deployment, Job…), or undefined for other kinds. */
export function podTemplate(object: K8sObject): JsonObject | undefined {
  const steps = POD_TEMPLATE_PATHS[object.kind];
  if (!steps) return undefined;
  let node: Json | undefined = object;
  for (const step of steps) node = isObject(node) ? node[step] : undefined;
  return isObject(node) ? node : undefined;
}

function addLabels(object: K8sObject, label: NonNullable<Kustomization['labels']>[number]): K8sObject {
  const result = structuredClone(object);
  result.metadata.labels = { ...(result.metadata.labels ?? {}), ...label.pairs };
  const template = label.includeTemplates ? podTemplate(result) : undefined;
  if (template) {
    const metadata = isObject(template.metadata) ? template.metadata : (template.metadata = {});
    metadata.labels = { ...(isObject(metadata.labels) ? metadata.labels : {}), ...label.pairs };
  }
  return result;
}

function setImages(object: K8sObject, images: NonNullable<Kustomization['images']>): K8sObject {
  const result = structuredClone(object);
  const spec = podTemplate(result)?.spec;
  if (!isObject(spec)) return result;
  for (const list of [spec.initContainers, spec.containers]) {
    for (const container of Array.isArray(list) ? list : []) {
      if (!isObject(container) || typeof container.image !== 'string') continue;
      const [, name = '', tag, digest] = /^([^@]+?)(?::([^:/@]+))?(?:@(.+))?$/.exec(container.image) ?? [];
      const image = images.find((candidate) => candidate.name === name);
      if (!image) continue;
      const newDigest = image.digest ?? (image.newTag ? undefined : digest);
      const newTag = image.digest ? undefined : (image.newTag ?? tag);
      container.image = `${image.newName ?? name}${newTag ? `:${newTag}` : ''}${newDigest ? `@${newDigest}` : ''}`;
    }
  }
  return result;
}

function readField(object: JsonObject, fieldPath: string): Json | undefined {
  let node: Json | undefined = object;
  for (const step of fieldPath.split('.')) node = isObject(node) ? node[step] : undefined;
  return node;
}

/** Sets `value` at every place `steps` reaches in `node`, `*` standing for each item of a list. */
function writeField(node: Json, steps: string[], value: string, options: Replacement['targets'][number]['options'], where: string): void {
  const [step, ...rest] = steps;
  if (step === '*') {
    if (!Array.isArray(node)) throw new Error(`replacement: ${where} is not a list`);
    for (const item of node) writeField(item, rest, value, options, where);
    return;
  }
  if (!isObject(node)) throw new Error(`replacement: ${where} does not exist`);
  if (rest.length) {
    if (node[step!] === undefined) {
      if (!options?.create) throw new Error(`replacement: ${where} does not exist`);
      node[step!] = {};
    }
    writeField(node[step!]!, rest, value, options, where);
    return;
  }
  const current = node[step!];
  if (current === undefined && !options?.create) throw new Error(`replacement: ${where} does not exist`);
  if (options?.delimiter === undefined) {
    node[step!] = value;
    return;
  }
  const parts = String(current ?? '').split(options.delimiter);
  const index = options.index ?? 0;
  if (index < 0 || index >= parts.length) throw new Error(`replacement: index ${index} is outside ${where}`);
  parts[index] = value;
  node[step!] = parts.join(options.delimiter);
}

function applyReplacements(objects: K8sObject[], replacements: Replacement[]): K8sObject[] {
  const result = structuredClone(objects);
  for (const { source, targets } of replacements) {
    const { fieldPath = 'metadata.name', ...selector } = source;
    const found = result.filter((object) => matches(object, selector));
    if (found.length !== 1) throw new Error(`replacement: the source ${JSON.stringify(selector)} selects ${found.length} objects`);
    const value = readField(found[0]!, fieldPath);
    if (typeof value !== 'string') throw new Error(`replacement: ${fieldPath} of the source is not a string`);
    for (const target of targets) {
      const selected = result.filter((object) => matches(object, target.select) && !(target.reject ?? []).some((reject) => matches(object, reject)));
      for (const object of selected) {
        for (const fieldPath of target.fieldPaths) writeField(object, fieldPath.split('.'), value, target.options, `${idOf(object)} ${fieldPath}`);
      }
    }
  }
  return result;
}

/** The objects `kustomize build dir` prints, in kustomize's order of transformations. */
export function renderKustomization(dir: string): K8sObject[] {
  const kustomization = loadKustomization(dir);
  let objects = (kustomization.resources ?? []).flatMap((entry) => loadResource(dir, entry));
  objects = applyPatches(objects, kustomization.patches ?? [], dir);
  if (kustomization.namespace) {
    const namespace = kustomization.namespace;
    objects = objects.map((object) => (CLUSTER_SCOPED.has(object.kind) ? object : { ...object, metadata: { ...object.metadata, namespace } }));
  }
  for (const label of kustomization.labels ?? []) objects = objects.map((object) => addLabels(object, label));
  if (kustomization.images) objects = objects.map((object) => setImages(object, kustomization.images!));
  if (kustomization.replacements) objects = applyReplacements(objects, kustomization.replacements);
  const ids = objects.map(idOf);
  const duplicates = ids.filter((id, index) => ids.indexOf(id) !== index);
  if (duplicates.length) throw new Error(`${dir}: ${duplicates.join(', ')} defined more than once`);
  return objects;
}
