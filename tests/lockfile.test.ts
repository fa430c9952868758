import { readFileSync } from 'node:fs';
import path from 'node:path';

/** `npm ci` refuses a lock whose entries point at packages it does not hold (see scripts/prune-lockfile.mjs). */
it('package-lock.json holds every package its entries depend on, so `npm ci` accepts it', () => {
  const lock = JSON.parse(readFileSync(path.resolve(import.meta.dirname ?? '.', '..', 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { optionalDependencies?: Record<string, string> }>;
  };
  const held = new Set(Object.keys(lock.packages).map((key) => key.replace(/^.*node_modules\//, '')));
  const missing = Object.entries(lock.packages).flatMap(([key, entry]) =>
    Object.keys(entry.optionalDependencies ?? {})
      .filter((name) => !held.has(name))
      .map((name) => `${key || '(root)'} → ${name}`),
  );
  expect(missing).toEqual([]);
});
