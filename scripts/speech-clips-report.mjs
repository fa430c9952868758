#!/usr/bin/env node
/**
 * Clips of one generated spoken video, before and after clips followed speech: eight espeak-ng
 * sentences with 1 s pauses over one shot, analysed by the built worker-cpu code, the same
 * signals handed to highlight scoring as of an earlier commit (default 60e0e21) and to today's
 * choice on audio pauses. Prints the sentences, the pauses found and both sets of clips.
 *
 *   npm run build && node scripts/speech-clips-report.mjs [--before <commit>] [--out talk.mp4]
 *
 * Needs espeak-ng, sox and ffmpeg, and the git history of the checkout.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import swc from '@swc/core';

const root = path.resolve(import.meta.dirname, '..');
const { values } = parseArgs({ options: { before: { type: 'string', default: '60e0e21' }, out: { type: 'string' } } });
const scratch = mkdtempSync(path.join(os.tmpdir(), 'clipline-report-'));

/** A TypeScript module compiled to a plain ES module in the scratch folder. */
async function loadTs(source, name) {
  const { code } = swc.transformSync(source, { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'es6' } });
  const file = path.join(scratch, `${name}.mjs`);
  writeFileSync(file, code.replace(/^import .*@clipline\/shared.*$/m, ''));
  return import(file);
}

const oldSource = execFileSync('git', ['show', `${values.before}:apps/worker-cpu/src/analysis/highlights.ts`], { cwd: root, encoding: 'utf8' });
const before = await loadTs(oldSource, 'old-highlights');
const media = await loadTs(readFileSync(path.join(root, 'tests/helpers/speech-media.ts'), 'utf8'), 'speech-media');
const { analyzeVideo } = await import(path.join(root, 'apps/worker-cpu/dist/analysis/analyze-video.js'));
const { CpuPool } = await import(path.join(root, 'apps/worker-cpu/dist/analysis/pool.js'));
const { FrameSignals } = await import(path.join(root, 'apps/worker-cpu/dist/analysis/frame-signals.js'));
const clips = await import(path.join(root, 'packages/shared/dist/clips/index.js'));

const file = values.out ?? path.join(scratch, 'talk.mp4');
const talk = await media.generateSpokenVideo({ path: file });
const span = (a, b) => `${a.toFixed(2)}-${b.toFixed(2)}`;
console.log(`video ${file}: ${talk.durationSeconds.toFixed(2)} s`);
console.log(`sentences heard: ${talk.sentences.map((s) => span(s.startSeconds, s.endSeconds)).join(' ')}`);

const pool = new CpuPool({ threads: 2 });
const frames = new FrameSignals();
let loudness;
const fps = 10;
const options = { clipCount: 3, minClipSeconds: 5, maxClipSeconds: 15 };
const analysis = await analyzeVideo(
  { tools: { ffmpegPath: process.env.FFMPEG_PATH ?? 'ffmpeg', ffprobePath: process.env.FFPROBE_PATH ?? 'ffprobe' }, pool, fps, width: 160, maxSeconds: 3600 },
  { file, sizeBytes: 1, clipOptions: options },
  { onFrameMetrics: (index, metrics) => frames.append(index, metrics), onLoudness: (track) => (loudness = track) },
);
await pool.close();
console.log(`pauses found: ${analysis.speech.pauses.map((p) => span(p.startSeconds, p.endSeconds)).join(' ')}`);
const signals = {
  fps,
  durationSeconds: analysis.metadata.durationSeconds,
  ...frames.snapshot(),
  cutFrames: analysis.cutSeconds.map((seconds) => Math.round(seconds * fps)),
  loudness: { stepSeconds: loudness.stepSeconds, shortTermLufs: Float32Array.from(loudness.shortTermLufs) },
};
const show = (label, list) => {
  console.log(label);
  for (const clip of list) {
    const clean = media.betweenSentences(talk, clip.startSeconds) && media.betweenSentences(talk, clip.endSeconds);
    const length = (clip.endSeconds - clip.startSeconds).toFixed(1);
    console.log(
      `  ${span(clip.startSeconds, clip.endSeconds)} (${length} s) score ${clip.score}, ${clean ? 'between sentences' : 'CUTS A SENTENCE'}: ${clip.reasons.join('; ')}`,
    );
  }
};
show(`before (highlight scoring as of ${values.before}):`, before.clipCandidates(signals, options));
const speech = clips.speechBoundaries(signals.durationSeconds, analysis.speech.pauses);
show('after, on pauses in the audio (no transcript):', clips.chooseClips(signals, { ...options, speech }).clips);
