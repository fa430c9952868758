#!/usr/bin/env node
// `npm run bench -- <name> [<name> …]`: runs bench/<name>.mjs, each of which prints one JSON
// object per line: {"bench", "metric", "value", "unit", "baseline", "ratio", …}, the baseline
// measured in the same run. With no name, lists the benchmarks.
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const available = readdirSync(here)
  .filter((file) => file.endsWith('.mjs') && file !== 'run.mjs' && !file.startsWith('_'))
  .map((file) => file.slice(0, -4))
  .sort();
const names = process.argv.slice(2).filter((arg) => !arg.startsWith('-'));
if (names.length === 0) {
  process.stderr.write(`usage: npm run bench -- <${available.join('|')}> …\n`);
  process.exit(available.length ? 2 : 1);
}
for (const name of names) {
  if (!available.includes(name)) {
    process.stderr.write(`unknown benchmark "${name}" (available: ${available.join(', ')})\n`);
    process.exit(2);
  }
}
// BENCH_FFMPEG=<dir>: every process of the run, the baselines included, runs the ffmpeg and
// ffprobe in <dir> (e.g. clipline's own build, `npm run ffmpeg:build` → .data/ffmpeg/bin).
// Each line names the ffmpeg it ran.
if (process.env.BENCH_FFMPEG) process.env.PATH = `${path.resolve(process.env.BENCH_FFMPEG)}${path.delimiter}${process.env.PATH}`;
const ffmpeg = (() => {
  try {
    return execFileSync('ffmpeg', ['-hide_banner', '-version'], { encoding: 'utf8' }).split('\n')[0];
  } catch {
    return 'not found';
  }
})();
// A reader that stops early (`| head -1`) closes stdout. The run still ends as usual, removing
// its processes, schema and Redis keys; only the lines left go nowhere.
let stdoutOpen = true;
process.stdout.on('error', (error) => {
  if (error.code !== 'EPIPE') throw error;
  stdoutOpen = false;
});
for (const name of names) {
  const module = await import(pathToFileURL(path.join(here, `${name}.mjs`)).href);
  await module.run({
    emit: (result) => stdoutOpen && process.stdout.write(`${JSON.stringify({ bench: name, ...result, ffmpeg })}\n`),
    log: (text) => process.stderr.write(`[${name}] ${text}\n`),
  });
}
