// One process of `npm run bench -- spawn` (bench/spawn.mjs): analyses the 60 s fixture with the
// real analysis and a two-thread pool, while children are started beside it (or not), and prints
// one JSON line per analysis with this process's CPU (every thread, not its children) and page
// faults over it.
//
// argv: <mode: none|direct|helper> <analyses> <start every ms> <fixture>
//   direct: this process starts `/bin/true` every interval (as worker-cpu starts its ffmpeg runs)
//   helper: a small process of its own starts them, asked over its IPC channel
import { fork, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

const [mode, analyses, everyMs, file] = process.argv.slice(2);
if (mode === 'helper-child') {
  process.on('message', () => spawn('/bin/true', { stdio: 'ignore' }).once('exit', () => process.send?.('done')));
} else {
  const dist = new URL('../apps/worker-cpu/dist/', import.meta.url);
  const { analyzeVideo } = await import(new URL('analysis/analyze-video.js', dist).href);
  const { CpuPool } = await import(new URL('analysis/pool.js', dist).href);
  const tools = { ffmpegPath: 'ffmpeg', ffprobePath: 'ffprobe' };
  const pool = new CpuPool({ threads: 2 });
  // A heap near worker-cpu's own in a pipeline run (210-220 MB of RSS): what a fork copies the page tables of.
  const heap = Array.from({ length: 600_000 }, (_, i) => ({ i, label: `entry ${i}` }));
  const counters = () => {
    const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
    return { cpuMs: (Number(fields[11]) + Number(fields[12])) * 10, faults: Number(fields[7]) };
  };
  const helper = mode === 'helper' ? fork(new URL(import.meta.url).pathname, ['helper-child']) : undefined;
  let starts = 0;
  const start = () => {
    starts++;
    if (helper) helper.send('start');
    else spawn('/bin/true', { stdio: 'ignore' });
  };
  const timer = mode === 'none' ? undefined : setInterval(start, Number(everyMs));
  const analyse = () => analyzeVideo({ tools, pool, fps: 10, width: 160, maxSeconds: 3600 }, { file, sizeBytes: 0 });
  await analyse(); // warm-up: the pool threads, the code
  for (let n = 0; n < Number(analyses); n++) {
    const before = { ...counters(), starts };
    await analyse();
    const after = { ...counters(), starts };
    const line = { mode, cpuMs: after.cpuMs - before.cpuMs, faults: after.faults - before.faults, starts: after.starts - before.starts, heap: heap.length };
    process.stdout.write(`${JSON.stringify(line)}\n`);
  }
  clearInterval(timer);
  helper?.kill();
  await pool.close();
}
