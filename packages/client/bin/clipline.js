#!/usr/bin/env node
// The `clipline` command. It lives outside dist/ so that npm can link it in a workspace before the
// first build; an installed package always has dist/, and this only loads the compiled CLI.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(fileURLToPath(cli))) {
  process.stderr.write(`clipline: ${fileURLToPath(cli)} is missing: in the clipline repository, build it with "npx tsc -b" (or "npm start")\n`);
  process.exit(1);
}
await import(cli.href);
