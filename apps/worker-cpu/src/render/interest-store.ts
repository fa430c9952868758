/**
 * The interest profiles analysis keeps for rendering: one record a sampled frame, its column
 * and row profiles quantised to a byte each (scaled to the frame's own largest value), in a
 * binary file in the video's storage folder, so a render reads the frames of its span without
 * decoding them again.
 *
 * Layout (little-endian): a 24-byte header (magic `CLIPINTR`, format version u16, profile width
 * u16, height u16, reserved u16, sampled fps f32, frame count u32), then one record a frame:
 * column scale f32, row scale f32, `width` column bytes, `height` row bytes. A profile value is
 * `byte × scale / 255`.
 */
import { open, rename, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import type { FrameInterest } from './interest-profile.js';

const MAGIC = 'CLIPINTR';
const FORMAT_VERSION = 1;
const HEADER_BYTES = 24;

/** Where analysis keeps a video's interest profiles: inside the video's folder, so a purge takes them. */
export function interestProfilesKey(videoId: string): string {
  return `videos/${videoId}/analysis/interest-profiles.bin`;
}

/** Size and rate of the profiles in a file. */
export interface InterestGeometry {
  fps: number;
  /** Columns (the sampled frame's width) and rows (its height) of each profile. */
  width: number;
  height: number;
}

/** Bytes of one frame's record. */
export function recordBytes(geometry: Pick<InterestGeometry, 'width' | 'height'>): number {
  return 8 + geometry.width + geometry.height;
}

function quantise(values: Float32Array, out: Uint8Array, at: number): number {
  let max = 0;
  for (const value of values) if (value > max) max = value;
  for (let i = 0; i < values.length; i++) out[at + i] = max > 0 ? Math.round((values[i]! / max) * 255) : 0;
  return max;
}

/** The records of frames (all of one geometry), packed one after another. */
export function quantiseInterest(frames: readonly Pick<FrameInterest, 'columns' | 'rows'>[]): Uint8Array {
  const first = frames[0];
  if (!first) return new Uint8Array(0);
  const size = recordBytes({ width: first.columns.length, height: first.rows.length });
  const out = new Uint8Array(size * frames.length);
  const view = new DataView(out.buffer);
  frames.forEach((frame, index) => {
    const at = index * size;
    view.setFloat32(at, quantise(frame.columns, out, at + 8), true);
    view.setFloat32(at + 4, quantise(frame.rows, out, at + 8 + frame.columns.length), true);
  });
  return out;
}

/** Profiles of consecutive frames, back to floats. */
export interface StoredProfiles {
  columns: Float32Array[];
  rows: Float32Array[];
}

/** The profiles in packed records (see {@link quantiseInterest}). */
export function dequantiseInterest(records: Uint8Array, geometry: Pick<InterestGeometry, 'width' | 'height'>): StoredProfiles {
  const size = recordBytes(geometry);
  const view = new DataView(records.buffer, records.byteOffset, records.byteLength);
  const profiles: StoredProfiles = { columns: [], rows: [] };
  const expand = (at: number, length: number, scale: number) => {
    const values = new Float32Array(length);
    for (let i = 0; i < length; i++) values[i] = (records[at + i]! * scale) / 255;
    return values;
  };
  for (let at = 0; at + size <= records.length; at += size) {
    profiles.columns.push(expand(at + 8, geometry.width, view.getFloat32(at, true)));
    profiles.rows.push(expand(at + 8 + geometry.width, geometry.height, view.getFloat32(at + 4, true)));
  }
  return profiles;
}

function header(geometry: InterestGeometry, frames: number): Uint8Array {
  const bytes = new Uint8Array(HEADER_BYTES);
  bytes.set(Buffer.from(MAGIC, 'latin1'));
  const view = new DataView(bytes.buffer);
  view.setUint16(8, FORMAT_VERSION, true);
  view.setUint16(10, geometry.width, true);
  view.setUint16(12, geometry.height, true);
  view.setFloat32(16, geometry.fps, true);
  view.setUint32(20, frames, true);
  return bytes;
}

/**
 * Writes the profiles of one analysis as its batches come, to a `.part` file renamed into place
 * by `finish`, so a reader never sees half a file and a retry replaces it whole.
 */
export class InterestProfileWriter {
  private handle: FileHandle | undefined;
  private geometry: InterestGeometry | undefined;
  private frames = 0;
  constructor(
    private readonly file: string,
    private readonly fps: number,
    /** The unfinished file: one of the writer's own (`partFileFor`), as two runs of one analysis may overlap. */
    private readonly part = `${file}.part`,
  ) {}

  /** Stores `count` frames' records (see {@link quantiseInterest}) from frame `firstIndex` on. */
  async add(firstIndex: number, batch: { width: number; height: number; count: number; records: Uint8Array }): Promise<void> {
    if (!this.handle) {
      this.geometry = { fps: this.fps, width: batch.width, height: batch.height };
      this.handle = await open(this.part, 'w');
      await this.handle.write(header(this.geometry, 0), 0, HEADER_BYTES, 0);
    }
    const size = recordBytes(batch);
    if (batch.width !== this.geometry?.width || batch.height !== this.geometry.height || batch.records.length < size * batch.count) {
      throw new Error('interest profiles of a batch do not match the file');
    }
    await this.handle.write(batch.records, 0, size * batch.count, HEADER_BYTES + firstIndex * size);
    this.frames = Math.max(this.frames, firstIndex + batch.count);
  }

  /** Completes the file (its frame count) and puts it in place; nothing is written without frames. */
  async finish(): Promise<void> {
    const { handle, geometry } = this;
    if (!handle || !geometry) return;
    this.handle = undefined;
    try {
      await handle.write(header(geometry, this.frames), 0, HEADER_BYTES, 0);
    } finally {
      await handle.close();
    }
    await rename(this.part, this.file);
  }

  /** Drops the unfinished file (after a failed analysis). */
  async abandon(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    await handle?.close().catch(() => {});
    await rm(this.part, { force: true });
  }
}

/** What a file holds from a frame on: its geometry, the index of its first frame here, and the profiles. */
export interface InterestSlice extends InterestGeometry, StoredProfiles {
  firstIndex: number;
}

/**
 * The profiles of `count` frames from `firstIndex` on, or undefined when the file is missing,
 * is not one of these files, or holds fewer frames.
 */
export async function readInterestProfiles(file: string, firstIndex: number, count: number): Promise<InterestSlice | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    const head = new Uint8Array(HEADER_BYTES);
    const { bytesRead } = await handle.read(head, 0, HEADER_BYTES, 0);
    const view = new DataView(head.buffer);
    if (bytesRead < HEADER_BYTES || Buffer.from(head.subarray(0, 8)).toString('latin1') !== MAGIC || view.getUint16(8, true) !== FORMAT_VERSION)
      return undefined;
    const geometry = { fps: view.getFloat32(16, true), width: view.getUint16(10, true), height: view.getUint16(12, true) };
    if (firstIndex < 0 || count <= 0 || firstIndex + count > view.getUint32(20, true)) return undefined;
    const size = recordBytes(geometry);
    const records = new Uint8Array(size * count);
    const read = await handle.read(records, 0, records.length, HEADER_BYTES + firstIndex * size);
    if (read.bytesRead < records.length) return undefined;
    return { ...geometry, firstIndex, ...dequantiseInterest(records, geometry) };
  } finally {
    await handle.close();
  }
}
