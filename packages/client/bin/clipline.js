#!/usr/bin/env node
// The `clipline` command. It lives outside dist/ so npm links it at install time, before the
// first build; the CLI itself is the compiled dist/cli.js.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(fileURLToPath(cli))) {
  process.stderr.write('clipline: the CLI is not built yet: run "npm run build" (or "npm start") first\n');
  process.exit(1);
}
await import(cli.href);
