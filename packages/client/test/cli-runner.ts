/** Runs the built `clipline` CLI as a child process, the way a user does. */
import { spawn } from 'node:child_process';
import path from 'node:path';

export const CLI = path.resolve(import.meta.dirname ?? '.', '../dist/cli.js');

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export type CliRunner = (args: string[], options?: { env?: Record<string, string>; cwd?: string }) => Promise<CliRun>;

/**
 * A runner whose children see only the variables `defaults` gives (plus PATH and HOME), so the
 * developer's own CLIPLINE_* settings never leak into a test.
 */
export function cliRunner(defaults: () => { cwd: string; env: Record<string, string> }): CliRunner {
  return (args, options = {}) => {
    const base = defaults();
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: options.cwd ?? base.cwd,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...base.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    return new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code) => resolve({ code, stdout, stderr }));
    });
  };
}
