#!/usr/bin/env node
import { setMaxListeners } from 'node:events';
import { constants } from 'node:os';
import { loadCliSettings, type CliSettings } from './cli/cli-config.js';
import { EXIT_INTERRUPTED } from './cli/cli-context.js';
import { runCli } from './cli/run-cli.js';

// The CLI's entry: the only place that reads the environment and the process's streams.
const interrupt = new AbortController();
// Every watched video and download listens to it: 50 at once are expected, not a leak.
setMaxListeners(0, interrupt.signal);

/**
 * Ctrl-C, a `kill`, `timeout` or a closed terminal stop the command the same way: what it
 * started is stopped, partial files are removed and the summary printed. A second signal does
 * not wait for the summary; the cursor the progress board hid comes back. SIGHUP is taken only
 * on a terminal: under `nohup` (output redirected) it stays ignored, as asked.
 */
type StopSignal = 'SIGINT' | 'SIGTERM' | 'SIGHUP';
const STOP_SIGNALS: StopSignal[] = process.stdout.isTTY || process.stderr.isTTY ? ['SIGINT', 'SIGTERM', 'SIGHUP'] : ['SIGINT', 'SIGTERM'];
let stoppedBy: StopSignal | undefined;
const exitCodeOf = (signal: StopSignal) => (signal === 'SIGINT' ? EXIT_INTERRUPTED : 128 + constants.signals[signal]);
for (const signal of STOP_SIGNALS) {
  process.on(signal, () => {
    if (stoppedBy) {
      if (process.stderr.isTTY) process.stderr.write('\x1b[?25h\n');
      process.exit(exitCodeOf(stoppedBy));
    }
    stoppedBy = signal;
    interrupt.abort(new Error('interrupted'));
  });
}

let settings: CliSettings | undefined;
const code = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  cwd: process.cwd(),
  settings: () => (settings ??= loadCliSettings(process.env)),
  signal: interrupt.signal,
});
// Interrupted: the exit code names the signal, as a shell reports a process it ended.
process.exitCode = code === EXIT_INTERRUPTED && stoppedBy ? exitCodeOf(stoppedBy) : code;
