import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

/**
 * `npm ci` installs exactly what a package-lock.json records and refuses a lock that does not
 * hold what the manifests ask for. These checks read a lock the way `npm ci` does, so a lock
 * left broken by an install (an edge to a package the registry did not serve, see
 * scripts/prune-lockfile.mjs; a manifest edited without `npm install`; a hand merge) fails here
 * rather than in CI's install step or on a fresh machine.
 *
 * Checked for the root lock and for scripts/node24's (the Node 24 binary of `npm run test:node24`).
 */
const ROOT = path.resolve(import.meta.dirname ?? '.', '..');
const semver = createRequire(import.meta.url)('semver') as {
  satisfies(version: string, range: string, options?: { includePrerelease?: boolean }): boolean;
  validRange(range: string): string | null;
};

interface Manifest {
  name?: string;
  version?: string;
  workspaces?: string[];
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  overrides?: Record<string, unknown>;
}

interface LockEntry extends Manifest {
  resolved?: string;
  integrity?: string;
  link?: boolean;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

interface Lock {
  lockfileVersion: number;
  packages: Record<string, LockEntry>;
}

const DEPENDENCY_FIELDS = ['dependencies', 'devDependencies', 'optionalDependencies', 'peerDependencies'] as const;

function readJson<T>(file: string): T {
  return JSON.parse(readFileSync(file, 'utf8')) as T;
}

/** The lock key a package at `key` is found at as `name`, by Node's lookup through the node_modules above it. */
function resolveEdge(lock: Lock, key: string, name: string): string | undefined {
  for (let at: string | null = key; at !== null; at = parentOf(at)) {
    const candidate = `${at ? `${at}/` : ''}node_modules/${name}`;
    if (lock.packages[candidate]) return candidate;
  }
  return undefined;
}

function parentOf(key: string): string | null {
  if (key === '') return null;
  const nested = key.lastIndexOf('/node_modules/');
  if (nested >= 0) return key.slice(0, nested);
  return ''; // node_modules/<name> and a workspace folder both sit in the root
}

/** A link entry stands for the workspace folder it points at. */
function target(lock: Lock, key: string): { key: string; entry: LockEntry } {
  const entry = lock.packages[key]!;
  if (entry.link && entry.resolved !== undefined) return { key: entry.resolved, entry: lock.packages[entry.resolved] ?? {} };
  return { key, entry };
}

/** The range an edge must satisfy, after the root's `overrides` (plain string overrides only) and `npm:` aliases. */
function wantedRange(overrides: Record<string, unknown>, name: string, spec: string): string | undefined {
  const override = overrides[name];
  const effective = typeof override === 'string' ? override : spec;
  const aliased = /^npm:(?:@[^/]+\/)?[^@]+@(.+)$/.exec(effective);
  const range = aliased ? aliased[1]! : effective;
  return semver.validRange(range) ? range : undefined;
}

/** The lock of `dir`, with the manifests of its root ('') and of each workspace (by folder). */
function readLock(dir: string): { lock: Lock; manifests: Map<string, Manifest | undefined> } {
  const root = readJson<Manifest>(path.join(dir, 'package.json'));
  const manifests = new Map<string, Manifest | undefined>([['', root]]);
  for (const workspace of root.workspaces ?? []) {
    const file = path.join(dir, workspace, 'package.json');
    manifests.set(workspace, existsSync(file) ? readJson<Manifest>(file) : undefined);
  }
  return { lock: readJson<Lock>(path.join(dir, 'package-lock.json')), manifests };
}

/** Every reason `npm ci` would refuse `lock`, or install something other than the manifests ask for. */
function checkLock(lock: Lock, manifests: Map<string, Manifest | undefined>): string[] {
  const problems: string[] = [];
  const where = (key: string) => key || '(root)';
  const root = manifests.get('') ?? {};

  if (lock.lockfileVersion !== 3) problems.push(`lockfileVersion is ${lock.lockfileVersion}, not 3`);

  // The root and each workspace: the lock records exactly the manifest's dependencies.
  for (const [key, declared] of manifests) {
    const recorded = lock.packages[key];
    if (!declared) {
      problems.push(`workspace ${key} has no package.json`);
      continue;
    }
    if (!recorded) {
      problems.push(`${where(key)}: not in the lock`);
      continue;
    }
    for (const field of ['name', 'version'] as const) {
      if (key !== '' && recorded[field] !== declared[field])
        problems.push(`${where(key)}: ${field} ${declared[field]} in package.json, ${recorded[field]} in the lock`);
    }
    for (const field of DEPENDENCY_FIELDS) {
      const want = JSON.stringify(Object.entries(declared[field] ?? {}).sort(([a], [b]) => a.localeCompare(b)));
      const have = JSON.stringify(Object.entries(recorded[field] ?? {}).sort(([a], [b]) => a.localeCompare(b)));
      if (want !== have) problems.push(`${where(key)}: ${field} of package.json ${want} differ from the lock's ${have} (run npm install)`);
    }
    if (key !== '') {
      const link = lock.packages[`node_modules/${declared.name}`];
      if (!link?.link || link.resolved !== key) problems.push(`${where(key)}: no link node_modules/${declared.name} → ${key}`);
    }
  }
  if (JSON.stringify(lock.packages['']?.workspaces ?? []) !== JSON.stringify(root.workspaces ?? []))
    problems.push('(root): workspaces differ from package.json');

  for (const [key, entry] of Object.entries(lock.packages)) {
    const isWorkspaceOrRoot = !key.includes('node_modules/');
    if (entry.link) {
      if (entry.resolved === undefined || !lock.packages[entry.resolved]) problems.push(`${key}: link to ${entry.resolved}, which the lock does not hold`);
      continue;
    }
    // What npm ci fetches: a version and an integrity for every package, and no registry URL
    // (omit-lockfile-registry-resolved: the lock works with whichever registry the machine uses).
    if (!isWorkspaceOrRoot) {
      if (!entry.version) problems.push(`${key}: no version`);
      if (!entry.integrity || !/^sha(512|384|256|1)-[A-Za-z0-9+/]+=*$/.test(entry.integrity)) problems.push(`${key}: no integrity`);
    }
    if (entry.resolved !== undefined) problems.push(`${key}: resolved ${entry.resolved} (the lock must not name a registry)`);

    // Every edge reaches a package the lock holds, in a version its range accepts.
    const edges: [string, string, boolean][] = [];
    for (const [name, spec] of Object.entries(entry.dependencies ?? {})) edges.push([name, spec, true]);
    for (const [name, spec] of Object.entries(entry.optionalDependencies ?? {})) edges.push([name, spec, true]);
    if (isWorkspaceOrRoot) for (const [name, spec] of Object.entries(entry.devDependencies ?? {})) edges.push([name, spec, true]);
    for (const [name, spec] of Object.entries(entry.peerDependencies ?? {})) edges.push([name, spec, !entry.peerDependenciesMeta?.[name]?.optional]);
    for (const [name, spec, required] of edges) {
      const found = resolveEdge(lock, key, name);
      if (!found) {
        if (required) problems.push(`${where(key)} → ${name}@${spec}: missing from the lock`);
        continue;
      }
      const version = target(lock, found).entry.version;
      const range = wantedRange(root.overrides ?? {}, name, spec);
      if (range !== undefined && (!version || !semver.satisfies(version, range, { includePrerelease: true }))) {
        problems.push(`${where(key)} → ${name}@${range}: the lock has ${version ?? 'no version'} at ${found}`);
      }
    }
  }
  return problems;
}

describe.each([
  ['package-lock.json', ROOT],
  ['scripts/node24/package-lock.json', path.join(ROOT, 'scripts', 'node24')],
])('%s', (_name, dir) => {
  it('is what `npm ci` installs from: manifests match it, every package has a version and an integrity, no registry URL, every dependency resolves', () => {
    const { lock, manifests } = readLock(dir);
    expect(Object.keys(lock.packages).length).toBeGreaterThan(1);
    expect(checkLock(lock, manifests)).toEqual([]);
  });
});

it('fails on the ways a lock breaks', () => {
  const { lock, manifests } = readLock(ROOT);
  const broken = structuredClone(lock);
  const packages = broken.packages;
  const shared = manifests.get('packages/shared')!;
  // An edge to a platform package the registry did not serve (what `npm run lock:prune` removes).
  packages['node_modules/jest']!.optionalDependencies = { 'jest-darwin-arm64-not-served': '1.0.0' };
  // A package without its integrity, one with a registry URL, one outside its dependant's range.
  delete packages['node_modules/zod']!.integrity;
  packages['node_modules/pino']!.resolved = 'https://registry.example/pino/-/pino-1.0.0.tgz';
  packages['node_modules/pg']!.version = '1.0.0';
  // A manifest edited without `npm install`.
  const edited = new Map(manifests).set('packages/shared', { ...shared, dependencies: { ...shared.dependencies, kysely: '^9.0.0' } });

  const problems = checkLock(broken, edited).join('\n');
  expect(problems).toMatch(/node_modules\/jest → jest-darwin-arm64-not-served@1\.0\.0: missing from the lock/);
  expect(problems).toMatch(/node_modules\/zod: no integrity/);
  expect(problems).toMatch(/node_modules\/pino: resolved https:/);
  expect(problems).toMatch(/packages\/shared → pg@\S+: the lock has 1\.0\.0/);
  expect(problems).toMatch(/packages\/shared: dependencies of package\.json .*kysely.*\^9\.0\.0.* differ from the lock's/);
  // … and the original passes (the checks compare, they do not just collect).
  expect(checkLock(lock, manifests)).toEqual([]);
});
