/**
 * Validates Kubernetes objects offline against the API's schemas, in two passes:
 *
 * - the OpenAPI schema of each kind, compiled to validators by kubernetes-models (the core and apps
 *   APIs) and @kubernetes-models/keda (KEDA's CRDs): required fields, types, enums, formats;
 * - unknown fields, which those validators let through as the schemas do not forbid them, but
 *   `kubectl apply` refuses (strict field validation): each object is written out as a TypeScript
 *   literal of the interface generated from the same schema and type-checked, so a misspelt or
 *   misplaced field is an excess-property error naming the field, the type and the object.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { idOf, type K8sObject } from './kustomize.js';
import { ROOT } from './workspace.js';

/** Module of the model (class, validator and interface) of an apiVersion and kind. */
export function modelModule(apiVersion: string, kind: string): string {
  if (!/^[A-Z][A-Za-z]+$/.test(kind)) throw new Error(`not a kind: ${kind}`);
  if (apiVersion.startsWith('keda.sh/')) return `@kubernetes-models/keda/${apiVersion}/${kind}`;
  if (/^(v1|(apps|batch|policy|autoscaling|networking\.k8s\.io|rbac\.authorization\.k8s\.io)\/v\w+)$/.test(apiVersion)) {
    return `kubernetes-models/${apiVersion}/${kind}`;
  }
  throw new Error(`no schema here for ${apiVersion} ${kind}`);
}

interface Model {
  validate(): void;
}

/** Schema errors of one object ([] when it is valid). */
export async function schemaErrors(object: K8sObject): Promise<string[]> {
  const module = (await import(modelModule(object.apiVersion, object.kind))) as Record<string, new (data: unknown) => Model>;
  const Model = module[object.kind];
  if (!Model) throw new Error(`${modelModule(object.apiVersion, object.kind)} exports no ${object.kind}`);
  try {
    new Model(structuredClone(object)).validate();
    return [];
  } catch (error) {
    const details = (error as { errors?: { instancePath?: string; message?: string }[] }).errors;
    return details?.length
      ? details.map((detail) => `${idOf(object)} ${detail.instancePath ?? ''}: ${detail.message ?? ''}`)
      : [`${idOf(object)}: ${(error as Error).message}`];
  }
}

/**
 * Unknown-field errors of the objects, from one type-check of all of them. tsc runs in a
 * temporary directory whose node_modules is the repository's, so the models resolve as in the
 * tests.
 */
export function unknownFieldErrors(objects: K8sObject[]): string[] {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'clipline-k8s-types-'));
  try {
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
    const lines: string[] = [];
    const owners: { line: number; id: string }[] = [];
    objects.forEach((object, index) => {
      const module = modelModule(object.apiVersion, object.kind);
      lines.push(`import type { I${object.kind} as T${index} } from '${module}';`);
    });
    objects.forEach((object, index) => {
      owners.push({ line: lines.length + 1, id: idOf(object) });
      lines.push(...`export const object${index}: T${index} = ${JSON.stringify(object, null, 1)};`.split('\n'));
    });
    writeFileSync(path.join(dir, 'objects.ts'), `${lines.join('\n')}\n`);
    const compilerOptions = { strict: true, noEmit: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', types: [], skipLibCheck: true };
    writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['objects.ts'] }));
    writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
    try {
      execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', dir], { cwd: dir, stdio: 'pipe' });
      return [];
    } catch (error) {
      const output = `${(error as { stdout?: Buffer }).stdout ?? ''}${(error as { stderr?: Buffer }).stderr ?? ''}`;
      const found = [...output.matchAll(/objects\.ts\((\d+),\d+\): error (TS\d+: .*)/g)].map(([, line, message]) => {
        const owner = owners.filter((candidate) => candidate.line <= Number(line)).at(-1);
        return `${owner?.id ?? 'imports'}: ${message}`;
      });
      // A failure that names no line of the objects (a broken setup) must not pass as "no errors".
      if (found.length === 0) throw new Error(`tsc failed without naming an object:\n${output || String(error)}`);
      return found;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
