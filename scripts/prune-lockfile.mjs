#!/usr/bin/env node
// `npm run lock:prune`, after any `npm install` that changed package-lock.json.
//
// Some native packages list one optional dependency per platform (@swc/core-darwin-arm64,
// @swc/core-win32-x64-msvc, …). When the registry a machine uses serves only some platforms,
// npm writes the lock without the missing ones but keeps the edges to them, and `npm ci` then
// refuses the lock ("Missing: … from lock file"). This drops the edges to packages the lock
// does not hold, so `npm ci` installs exactly what the lock records.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const file = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'package-lock.json');
const lock = JSON.parse(readFileSync(file, 'utf8'));
const held = new Set(Object.keys(lock.packages).map((key) => key.replace(/^.*node_modules\//, '')));
let dropped = 0;
for (const entry of Object.values(lock.packages)) {
  for (const name of Object.keys(entry.optionalDependencies ?? {})) {
    if (!held.has(name)) {
      delete entry.optionalDependencies[name];
      dropped++;
    }
  }
  if (entry.optionalDependencies && Object.keys(entry.optionalDependencies).length === 0) delete entry.optionalDependencies;
}
writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
process.stdout.write(`package-lock.json: dropped ${dropped} optional dependencies the registry did not serve\n`);
