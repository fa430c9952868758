import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { bestOffset, planCropPath } from '../src/render/crop-plan.js';
import { dequantiseInterest, InterestProfileWriter, quantiseInterest, readInterestProfiles, recordBytes } from '../src/render/interest-store.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'clipline-interest-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A profile with a bump of interest around `centre` on a faint ground. */
function bump(length: number, centre: number, height = 40): Float32Array {
  return Float32Array.from({ length }, (_, x) => 0.5 + height * Math.exp(-(((x - centre) / 6) ** 2)));
}

function frameOf(k: number) {
  return { columns: bump(160, 40 + k * 5), rows: bump(90, 45, 10 + k) };
}

describe('quantised interest profiles', () => {
  it('keep each value within 1/255 of its frame’s largest, and the window where it was', () => {
    const frames = [frameOf(0), frameOf(10), { columns: new Float32Array(160), rows: new Float32Array(90) }];
    const records = quantiseInterest(frames);
    expect(records.length).toBe(3 * recordBytes({ width: 160, height: 90 }));
    const back = dequantiseInterest(records, { width: 160, height: 90 });
    frames.forEach((frame, k) => {
      const max = Math.max(...frame.columns);
      for (let x = 0; x < 160; x++) expect(Math.abs(back.columns[k]![x]! - frame.columns[x]!)).toBeLessThanOrEqual(max / 510 + 1e-6);
      expect(bestOffset(back.columns[k]!, 56)).toBeCloseTo(bestOffset(frame.columns, 56), 2);
      expect(back.rows[k]).toHaveLength(90);
    });
    // A flat (empty) frame stays flat, so the window stays centred.
    expect(bestOffset(back.columns[2]!, 56)).toBe(0.5);
  });

  it('are written as they come and read back from any frame on; a missing or short file reads as none', async () => {
    const file = path.join(dir, 'profiles.bin');
    const writer = new InterestProfileWriter(file, 10);
    const frames = Array.from({ length: 20 }, (_, k) => frameOf(k));
    for (let first = 0; first < 20; first += 8) {
      const batch = frames.slice(first, first + 8);
      await writer.add(first, { width: 160, height: 90, count: batch.length, records: quantiseInterest(batch) });
    }
    expect(await readInterestProfiles(file, 0, 1)).toBeUndefined();
    await writer.finish();
    expect(await readdir(dir)).toEqual(['profiles.bin']);

    const slice = await readInterestProfiles(file, 5, 10);
    expect(slice).toMatchObject({ fps: 10, width: 160, height: 90, firstIndex: 5 });
    expect(slice!.columns).toHaveLength(10);
    const expected = dequantiseInterest(quantiseInterest(frames.slice(5, 15)), { width: 160, height: 90 });
    expect(slice!.columns).toEqual(expected.columns);
    expect(slice!.rows).toEqual(expected.rows);
    expect(await readInterestProfiles(file, 15, 6)).toBeUndefined();
    await writeFile(path.join(dir, 'other.bin'), 'not a profile file at all');
    expect(await readInterestProfiles(path.join(dir, 'other.bin'), 0, 1)).toBeUndefined();
  });

  it('leave no file behind when the analysis is abandoned', async () => {
    const sub = await mkdtemp(path.join(dir, 'abandoned-'));
    const writer = new InterestProfileWriter(path.join(sub, 'profiles.bin'), 10);
    await writer.add(0, { width: 160, height: 90, count: 1, records: quantiseInterest([frameOf(0)]) });
    await writer.abandon();
    expect(await readdir(sub)).toEqual([]);
  });
});

describe('planCropPath on frames off the clip’s start', () => {
  it('times the keyframes from the first frame’s place in the clip, and still starts at 0', () => {
    const profiles = Array.from({ length: 30 }, (_, k) => bump(160, 20 + k * 4));
    const input = { fps: 10, profiles, window: 40, cutFrames: [], maxKeyframes: 100 };
    const aligned = planCropPath(input);
    const shifted = planCropPath({ ...input, startSeconds: -0.04 });
    expect(shifted[0]).toEqual({ seconds: 0, offset: aligned[0]!.offset });
    expect(shifted.length).toBe(aligned.length);
    for (let k = 1; k < aligned.length; k++) {
      expect(shifted[k]!.seconds).toBeCloseTo(aligned[k]!.seconds - 0.04, 3);
      expect(shifted[k]!.offset).toBe(aligned[k]!.offset);
    }
  });
});
