/**
 * The two patch kinds kustomize applies: strategic merge (maps merge key by key, lists of named
 * things merge item by item on their merge key, other lists are replaced, `null` deletes) and
 * JSON patch (RFC 6902: add, replace, remove, test on JSON pointers, `-` appends). Only what the
 * Kubernetes API declares as merge keys for the fields used here is known; a list without a known
 * merge key is replaced whole, as the API does for atomic lists.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Merge keys of the lists a strategic merge patch merges item by item, by field name (and, for ports, by what the items hold). */
function mergeKeyOf(field: string, items: Json[]): string | undefined {
  switch (field) {
    case 'containers':
    case 'initContainers':
    case 'ephemeralContainers':
    case 'env':
    case 'volumes':
    case 'imagePullSecrets':
      return 'name';
    case 'volumeMounts':
      return 'mountPath';
    case 'ports':
      // Container ports merge on containerPort, Service ports on port.
      return items.some((item) => isObject(item) && 'containerPort' in item) ? 'containerPort' : 'port';
    default:
      return undefined;
  }
}

function mergeList(field: string, target: Json[], patch: Json[]): Json[] {
  const key = mergeKeyOf(field, [...target, ...patch]);
  if (!key) return structuredClone(patch);
  const merged = structuredClone(target);
  for (const item of patch) {
    if (!isObject(item) || item[key] === undefined) throw new Error(`strategic merge: an item of ${field} has no ${key}`);
    const index = merged.findIndex((existing) => isObject(existing) && existing[key] === item[key]);
    if (item.$patch === 'delete') {
      if (index !== -1) merged.splice(index, 1);
    } else if (index === -1) {
      merged.push(structuredClone(item));
    } else {
      merged[index] = strategicMerge(merged[index] as JsonObject, item);
    }
  }
  return merged;
}

export function strategicMerge(target: JsonObject, patch: JsonObject): JsonObject {
  const result = structuredClone(target);
  for (const [field, value] of Object.entries(patch)) {
    // `$patch: delete` is understood on list items only (mergeList); other directives are not modelled.
    if (field.startsWith('$')) throw new Error(`strategic merge directive ${field} is not supported here`);
    const current = result[field];
    if (value === null) delete result[field];
    else if (isObject(value) && isObject(current)) result[field] = strategicMerge(current, value);
    else if (Array.isArray(value) && Array.isArray(current)) result[field] = mergeList(field, current, value);
    else result[field] = structuredClone(value);
  }
  return result;
}

export interface JsonPatchOperation {
  op: 'add' | 'replace' | 'remove' | 'test';
  path: string;
  value?: Json;
}

function pointer(path: string): string[] {
  if (!path.startsWith('/')) throw new Error(`JSON pointer ${path} must start with /`);
  return path
    .slice(1)
    .split('/')
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** The container of the last token and that token; throws, naming the path, where it does not exist. */
function locate(document: Json, tokens: string[], path: string): { parent: JsonObject | Json[]; token: string } {
  let node: Json = document;
  for (const token of tokens.slice(0, -1)) {
    const next: Json | undefined = Array.isArray(node) ? node[Number(token)] : isObject(node) ? node[token] : undefined;
    if (next === undefined) throw new Error(`JSON patch: ${path} does not exist (at ${token})`);
    node = next;
  }
  if (!Array.isArray(node) && !isObject(node)) throw new Error(`JSON patch: the parent of ${path} is not a container`);
  return { parent: node, token: tokens.at(-1)! };
}

function applyOperation(document: JsonObject, operation: JsonPatchOperation): void {
  const { parent, token } = locate(document, pointer(operation.path), operation.path);
  if (Array.isArray(parent)) {
    const index = token === '-' ? parent.length : Number(token);
    if (!Number.isInteger(index) || index < 0 || index > parent.length) throw new Error(`JSON patch: bad index in ${operation.path}`);
    if (operation.op === 'add') parent.splice(index, 0, structuredClone(operation.value!));
    else if (index >= parent.length) throw new Error(`JSON patch: ${operation.path} does not exist`);
    else if (operation.op === 'replace') parent[index] = structuredClone(operation.value!);
    else if (operation.op === 'remove') parent.splice(index, 1);
    else if (JSON.stringify(parent[index]) !== JSON.stringify(operation.value)) throw new Error(`JSON patch: test failed at ${operation.path}`);
    return;
  }
  if (operation.op !== 'add' && !(token in parent)) throw new Error(`JSON patch: ${operation.path} does not exist`);
  if (operation.op === 'add' || operation.op === 'replace') parent[token] = structuredClone(operation.value!);
  else if (operation.op === 'remove') delete parent[token];
  else if (JSON.stringify(parent[token]) !== JSON.stringify(operation.value)) throw new Error(`JSON patch: test failed at ${operation.path}`);
}

export function jsonPatch(document: JsonObject, operations: JsonPatchOperation[]): JsonObject {
  const result = structuredClone(document);
  for (const operation of operations) {
    if (!['add', 'replace', 'remove', 'test'].includes(operation.op)) throw new Error(`JSON patch operation ${operation.op} is not supported here`);
    applyOperation(result, operation);
  }
  return result;
}
