/** Facts about the repository the infrastructure tests compare the deployment files with. */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

export const ROOT = path.resolve(import.meta.dirname ?? '.', '../../..');

export function readText(relative: string): string {
  return readFileSync(path.join(ROOT, relative), 'utf8');
}

export function readJson<T>(relative: string): T {
  return JSON.parse(readText(relative)) as T;
}

export interface Manifest {
  name: string;
  workspaces?: string[];
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

/** The root package.json's workspaces (directories relative to the root). */
export function workspaces(): string[] {
  return readJson<Manifest>('package.json').workspaces ?? [];
}

export interface TsProject {
  /** Directory relative to the root ('' for the root solution). */
  dir: string;
  outDir: string | undefined;
  include: string[];
  extends: string | undefined;
  references: string[];
}

function readProject(dir: string): TsProject {
  const config = readJson<{ extends?: string; include?: string[]; compilerOptions?: { outDir?: string }; references?: { path: string }[] }>(
    path.posix.join(dir, 'tsconfig.json'),
  );
  return {
    dir,
    outDir: config.compilerOptions?.outDir && path.posix.join(dir, config.compilerOptions.outDir),
    include: (config.include ?? []).map((entry) => path.posix.join(dir, entry)),
    extends: config.extends && path.posix.join(dir, config.extends),
    references: (config.references ?? []).map((reference) => path.posix.normalize(path.posix.join(dir, reference.path))),
  };
}

/** Every project `tsc -b` builds from the root tsconfig.json, references followed transitively. */
export function tsProjects(): TsProject[] {
  const seen = new Map<string, TsProject>();
  const visit = (dir: string) => {
    if (seen.has(dir)) return;
    const project = readProject(dir);
    seen.set(dir, project);
    for (const reference of project.references) visit(reference);
  };
  visit('');
  return [...seen.values()];
}

/** The script a container command runs with node (`node apps/x/dist/main.js` → that path), if any. */
export function nodeScript(command: readonly string[]): string | undefined {
  const index = command.indexOf('node');
  return index === -1 ? undefined : command.slice(index + 1).find((word) => !word.startsWith('-'));
}

/** The TypeScript source a compiled file comes from (`apps/x/dist/main.js` → `apps/x/src/main.ts`), for the projects tsc -b builds. */
export function sourceOf(compiled: string): string | undefined {
  for (const project of tsProjects()) {
    if (!project.outDir || !compiled.startsWith(`${project.outDir}/`)) continue;
    const rootDir = project.include[0];
    if (rootDir) return path.posix.join(rootDir, path.posix.relative(project.outDir, compiled)).replace(/\.js$/, '.ts');
  }
  return undefined;
}

const sources = new Map<string, string[]>();

/** Whether any TypeScript source under a directory (relative to the root) matches; each directory is read once. */
export function sourcesMatch(dir: string, pattern: RegExp): boolean {
  if (!sources.has(dir)) {
    const entries = readdirSync(path.join(ROOT, dir), { withFileTypes: true, recursive: true });
    sources.set(
      dir,
      entries.filter((entry) => entry.isFile() && entry.name.endsWith('.ts')).map((entry) => readFileSync(path.join(entry.parentPath, entry.name), 'utf8')),
    );
  }
  return sources.get(dir)!.some((text) => pattern.test(text));
}
