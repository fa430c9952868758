/**
 * Every package a workspace's sources import at run time is one of its own dependencies. npm
 * hoists what another workspace declares, so an undeclared import works in the repository and
 * breaks where the workspace is installed alone (a pruned image, a published package).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');
const WORKSPACES: string[] = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).workspaces;

/** Every .ts file under `dir`, recursively. */
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sources(full);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [full] : [];
  });
}

/** Package names a source imports at run time (`import type` and `export type` leave nothing behind). */
function runtimeImports(text: string): string[] {
  const names = new Set<string>();
  const statement = /^\s*(import|export)\s+(type\s+)?[^;]*?from\s+['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm;
  for (const match of text.matchAll(statement)) {
    if (match[2]) continue;
    const specifier = match[3] ?? match[4] ?? match[5] ?? '';
    if (specifier.startsWith('.') || specifier.startsWith('node:') || specifier.startsWith('#')) continue;
    const parts = specifier.split('/');
    const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? '');
    if (!builtinModules.includes(name)) names.add(name);
  }
  return [...names];
}

describe('workspace dependencies', () => {
  it('finds runtime imports and leaves type-only ones out', () => {
    const text = `import { z } from 'zod';
import type { Logger } from 'pino';
export type { Job } from 'bullmq';
import express, { type Router } from 'express';
import 'dotenv/config';
const got = await import('got');
import { readFile } from 'node:fs/promises';
import path from 'path';
import { x } from './local.js';
import { y } from '@clipline/shared/clips';`;
    expect(runtimeImports(text).sort()).toEqual(['@clipline/shared', 'dotenv', 'express', 'got', 'zod']);
  });

  it.each(WORKSPACES)('%s declares every package its sources import', (workspace) => {
    const manifest = JSON.parse(readFileSync(path.join(ROOT, workspace, 'package.json'), 'utf8'));
    const declared = new Set([
      manifest.name,
      ...Object.keys(manifest.dependencies ?? {}),
      ...Object.keys(manifest.optionalDependencies ?? {}),
      ...Object.keys(manifest.peerDependencies ?? {}),
    ]);
    const missing = sources(path.join(ROOT, workspace, 'src')).flatMap((file) =>
      runtimeImports(readFileSync(file, 'utf8'))
        .filter((name) => !declared.has(name))
        .map((name) => `${name} (${path.relative(ROOT, file)})`),
    );
    expect(missing).toEqual([]);
  });
});
