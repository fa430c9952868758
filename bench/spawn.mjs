// `npm run bench -- spawn`: what starting child processes costs the process that starts them.
//
// worker-cpu starts ffmpeg about twice a second in a pipeline run, from a process of 210-220 MB.
// Each start forks that process: its page tables are copied, and afterwards its pages fault
// again on their next write. This bench measures the cost where it lands, in the work that runs
// beside the starts: the real analysis of the 60 s fixture (two pool threads) in a process of
// about worker-cpu's size, with no children started, with `/bin/true` started by the process
// itself every 500 ms, and with the same starts made by a small helper process asked over IPC.
// Each mode runs in a process of its own, rounds alternating; the median analysis counts.
//
// - analysis_cpu_direct_starts_vs_none: CPU of an analysis while the process starts children
//   itself ÷ with none started.
// - analysis_cpu_helper_starts_vs_none: the same with a helper starting them (the peer: what the
//   starts cost when the big process does not fork).
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const here = path.dirname(fileURLToPath(import.meta.url));
const FIXTURE = path.join(process.env.CLIPLINE_FIXTURES_DIR ?? path.resolve(here, '../../shared/fixtures'), 'video', 'bbb_h264_aac_60s.mp4');
const ROUNDS = Number(process.env.BENCH_SPAWN_ROUNDS ?? 3);
const ANALYSES = 3;
const EVERY_MS = 500;

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

export async function run({ emit, log }) {
  const samples = { none: [], direct: [], helper: [] };
  for (let round = 1; round <= ROUNDS; round++) {
    for (const mode of Object.keys(samples)) {
      const { stdout } = await promisify(execFile)(process.execPath, [path.join(here, '_spawn-probe.mjs'), mode, String(ANALYSES), String(EVERY_MS), FIXTURE]);
      const lines = stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line));
      samples[mode].push(...lines);
      log(`round ${round}/${ROUNDS} ${mode}: ${lines.map((line) => `${line.cpuMs} ms, ${line.faults} faults, ${line.starts} starts`).join('; ')}`);
    }
  }
  const cpu = (mode) => median(samples[mode].map((sample) => sample.cpuMs));
  const faults = (mode) => median(samples[mode].map((sample) => sample.faults));
  const startsPerAnalysis = median(samples.direct.map((sample) => sample.starts));
  const context = { starts_every_ms: EVERY_MS, samples: Object.fromEntries(Object.entries(samples).map(([mode, list]) => [mode, list.map((s) => s.cpuMs)])) };
  for (const mode of ['direct', 'helper']) {
    emit({
      metric: `analysis_cpu_${mode}_starts_vs_none`,
      value: cpu(mode),
      unit: 'ms CPU per analysis (median)',
      baseline: cpu('none'),
      baseline_unit: 'ms CPU per analysis with no child started (median)',
      ratio: Math.round((cpu(mode) / cpu('none')) * 1000) / 1000,
      extra_cpu_ms_per_start: Math.round((cpu(mode) - cpu('none')) / Math.max(1, startsPerAnalysis)),
      starts_per_analysis: startsPerAnalysis,
      page_faults: faults(mode),
      page_faults_none: faults('none'),
      ...context,
    });
  }
}
