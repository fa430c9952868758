/**
 * The Docker build context of a directory: every file on disk that `.dockerignore` lets through,
 * as Docker sends it (files that are there, tracked or not, not what git knows). Matching is
 * @balena/dockerignore's, which follows Docker's rules: patterns are anchored at the root, `**`
 * spans directories, a later `!pattern` re-includes, the last matching line decides, and a
 * pattern that matches a directory matches everything below it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import dockerignore from '@balena/dockerignore';

export interface ContextListing {
  files: Set<string>;
  /** Whether a path (relative, '/'-separated) is left out of the context. */
  ignores: (relative: string) => boolean;
}

export function dockerignorePatterns(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0 && !line.startsWith('#'));
}

export function buildContext(root: string): ContextListing {
  const patterns = dockerignorePatterns(readFileSync(path.join(root, '.dockerignore'), 'utf8'));
  const matcher = dockerignore().add(patterns);
  const exceptions = patterns.filter((pattern) => pattern.startsWith('!')).map((pattern) => pattern.slice(1).replace(/^\//, ''));
  // A directory is skipped whole only when no exception could re-include something below it;
  // otherwise its files are judged one by one, as Docker's walker does.
  const mayReinclude = (dir: string) => exceptions.some((exception) => exception.startsWith(`${dir}/`) || /^[*?[]/.test(exception));
  const files = new Set<string>();
  const walk = (relative: string) => {
    for (const entry of readdirSync(path.join(root, relative), { withFileTypes: true })) {
      const child = relative ? `${relative}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        if (matcher.ignores(child) && !mayReinclude(child)) continue;
        walk(child);
      } else if (!matcher.ignores(child)) {
        files.add(child);
      }
    }
  };
  walk('');
  return { files, ignores: (relative) => matcher.ignores(relative) };
}
