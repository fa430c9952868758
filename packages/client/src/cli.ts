#!/usr/bin/env node
import { loadCliSettings, type CliSettings } from './cli/cli-config.js';
import { EXIT_INTERRUPTED } from './cli/cli-context.js';
import { runCli } from './cli/run-cli.js';

// The CLI's entry: the only place that reads the environment and the process's streams.
const interrupt = new AbortController();
process.once('SIGINT', () => {
  interrupt.abort(new Error('interrupted'));
  // A second Ctrl-C does not wait for the summary; the cursor the progress board hid comes back.
  process.once('SIGINT', () => {
    if (process.stderr.isTTY) process.stderr.write('\x1b[?25h\n');
    process.exit(EXIT_INTERRUPTED);
  });
});

let settings: CliSettings | undefined;
process.exitCode = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  cwd: process.cwd(),
  settings: () => (settings ??= loadCliSettings(process.env)),
  signal: interrupt.signal,
});
