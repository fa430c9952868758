/**
 * Reading the index of an MP4 / QuickTime file (its `moov` box) without starting ffmpeg: the
 * tracks, their sample descriptions and where each chunk of samples lies in the file. Starting
 * ffprobe or ffmpeg costs a tenth of a CPU second or more before it reads a byte on a build that
 * links hundreds of libraries; reading the index costs a few reads. Anything this reader does
 * not follow (a fragmented file, a compact sample size table, several sample descriptions in one
 * track, an index that contradicts itself) makes it answer `undefined`, and the caller falls
 * back to ffmpeg, which knows every corner of the format.
 */
import { open, stat, type FileHandle } from 'node:fs/promises';
import { avcConfigSps, avcSampleAspect } from './avc-sps.js';

/** A box inside a buffer: its type, where it starts, where its body starts and where it ends. */
export interface Mp4Box {
  type: string;
  start: number;
  body: number;
  end: number;
}

/**
 * Where each chunk of a track's samples lies in the file, as two arrays of the same length rather
 * than an object a chunk: ffmpeg writes a chunk for every video frame, so an index of two hours
 * holds hundreds of thousands, and an object each cost the event loop tens of milliseconds of
 * building and collecting.
 */
export interface Mp4Chunks {
  offsets: Float64Array;
  sizes: Float64Array;
}

export interface Mp4Track {
  /** The `trak` box within {@link Mp4Movie.moov}. */
  box: Mp4Box;
  /** The handler: `vide`, `soun`, `text`, … */
  handler: string;
  /** The media's own clock (`mdhd`). */
  timescale: number;
  duration: number;
  /** The four-character code of the sample description: `avc1`, `hvc1`, `mp4a`, … */
  codecTag: string;
  /** For `mp4a`: the object type of its decoder configuration (0x40 MPEG-4 audio, 0x66-0x68 MPEG-2 AAC, 0x69/0x6b MP3). */
  objectType?: number | undefined;
  /** Picture size from the visual sample description, in stored (coded) pixels. */
  width?: number | undefined;
  height?: number | undefined;
  /**
   * For pictures: the width:height of one stored pixel, as ffmpeg takes it (`pixelAspectOf`;
   * [1, 1]: square); undefined when only a header this reader does not parse could tell, which
   * is ffprobe's to settle.
   */
  pixelAspect?: readonly [number, number] | undefined;
  /** The track header's display matrix as a clockwise quarter turn (0, 90, 180, 270). */
  rotation: number;
  sampleCount: number;
  /** Sum of the sample durations in `stts`, in {@link timescale} units. */
  samplesDuration: number;
  chunks: Mp4Chunks;
  /** Total bytes of the track's samples. */
  bytes: number;
}

export interface Mp4Movie {
  fileSize: number;
  /** The whole `moov` box, header included. */
  moov: Buffer;
  mvhd: Mp4Box;
  /** Movie clock and duration (`mvhd`). */
  timescale: number;
  duration: number;
  tracks: Mp4Track[];
}

/** The largest index this reader loads (an hour of 60 fps video indexes in well under 2 MB). */
const MAX_MOOV_BYTES = 64 * 1024 * 1024;

/** Top-level box types a file of this family starts with. */
const LEADING_BOXES = new Set(['ftyp', 'moov', 'mdat', 'wide', 'free', 'skip', 'pnot']);

class Unsupported extends Error {}

/** The boxes in [from, to) of `bytes`; a box that does not fit makes the index unreadable. */
export function mp4Boxes(bytes: Buffer, from: number, to: number): Mp4Box[] {
  const boxes: Mp4Box[] = [];
  let at = from;
  while (at + 8 <= to) {
    let size = bytes.readUInt32BE(at);
    let header = 8;
    if (size === 1) {
      if (at + 16 > to) throw new Unsupported('box header cut');
      size = Number(bytes.readBigUInt64BE(at + 8));
      header = 16;
    } else if (size === 0) {
      size = to - at;
    }
    if (size < header || at + size > to) throw new Unsupported('box runs past its parent');
    boxes.push({ type: bytes.toString('latin1', at + 4, at + 8), start: at, body: at + header, end: at + size });
    at += size;
  }
  return boxes;
}

/** The first child of `parent` of `type`. */
export function mp4Child(bytes: Buffer, parent: Pick<Mp4Box, 'body' | 'end'>, type: string): Mp4Box | undefined {
  return mp4Boxes(bytes, parent.body, parent.end).find((box) => box.type === type);
}

function child(bytes: Buffer, parent: Mp4Box, type: string): Mp4Box {
  const found = mp4Child(bytes, parent, type);
  if (!found) throw new Unsupported(`no ${type} in ${parent.type}`);
  return found;
}

/** Reads `length` bytes at `position`; fewer than asked means the file ends first. */
async function readAt(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  // Only the part filled is handed out.
  const buffer = Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await handle.read(buffer, filled, length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return buffer.subarray(0, filled);
}

/** Finds the `moov` box among the top-level boxes (at the head of a faststart file, else after `mdat`). */
async function readMoov(handle: FileHandle, fileSize: number): Promise<Buffer | undefined> {
  let at = 0;
  let first = true;
  while (at + 8 <= fileSize) {
    const head = await readAt(handle, at, 16);
    if (head.length < 8) return undefined;
    const type = head.toString('latin1', 4, 8);
    if (first && !LEADING_BOXES.has(type)) return undefined;
    first = false;
    let size = head.readUInt32BE(0);
    if (size === 1) {
      if (head.length < 16) return undefined;
      size = Number(head.readBigUInt64BE(8));
    } else if (size === 0) {
      size = fileSize - at;
    }
    if (size < 8 || at + size > fileSize) return undefined;
    if (type === 'moov') {
      if (size > MAX_MOOV_BYTES) return undefined;
      const moov = await readAt(handle, at, size);
      return moov.length === size ? moov : undefined;
    }
    at += size;
  }
  return undefined;
}

/** Reads an MPEG-4 descriptor's tag and length; returns where its body starts. */
function descriptor(bytes: Buffer, at: number, end: number): { tag: number; body: number; end: number } {
  if (at >= end) throw new Unsupported('descriptor cut');
  const tag = bytes[at]!;
  let length = 0;
  let cursor = at + 1;
  for (let i = 0; i < 4; i++) {
    if (cursor >= end) throw new Unsupported('descriptor cut');
    const byte = bytes[cursor++]!;
    length = (length << 7) | (byte & 0x7f);
    if ((byte & 0x80) === 0) break;
  }
  return { tag, body: cursor, end: Math.min(end, cursor + length) };
}

/** The object type named by an `esds` box (ES descriptor, then its decoder configuration). */
function esdsObjectType(bytes: Buffer, esds: Mp4Box): number | undefined {
  const es = descriptor(bytes, esds.body + 4, esds.end);
  if (es.tag !== 0x03) return undefined;
  let at = es.body + 2;
  const flags = bytes[at++]!;
  if (flags & 0x80) at += 2;
  if (flags & 0x40) at += 1 + bytes[at]!;
  if (flags & 0x20) at += 2;
  const config = descriptor(bytes, at, es.end);
  return config.tag === 0x04 && config.body < config.end ? bytes[config.body] : undefined;
}

/** What a track header says of the picture's presentation (see `presentedSize`). */
interface Presented {
  width: number;
  height: number;
  stretched: boolean;
}

/** The largest term of a `pasp` ratio ffmpeg keeps as it is. */
const MAX_PASP_TERM = 32767;

/** Where a visual sample entry's boxes start: after its 78 bytes of fixed fields. */
const VISUAL_ENTRY_FIELDS = 78;

/**
 * The stored pixel's aspect of a visual sample entry, decided as ffmpeg's MP4 reader and its
 * command line decide it: the `pasp` box when it names one (a zero counts as none); else the
 * track header's presentation size (`presented`) set against the stored size when the two
 * differ; else what the stream's own header says, read for H.264 (its SPS in `avcC`).
 * Undefined when only another codec's header, or a display matrix that stretches the picture,
 * could tell.
 */
function pixelAspectOf(bytes: Buffer, entry: Mp4Box, stored: { width: number; height: number }, presented: Presented): readonly [number, number] | undefined {
  if (entry.body + VISUAL_ENTRY_FIELDS > entry.end) return undefined;
  let children: Mp4Box[];
  try {
    children = mp4Boxes(bytes, entry.body + VISUAL_ENTRY_FIELDS, entry.end);
  } catch (error) {
    // Boxes this reader cannot follow leave the aspect unknown, not the rest of the index.
    if (error instanceof Unsupported) return undefined;
    throw error;
  }
  const pasp = children.find((box) => box.type === 'pasp');
  if (pasp && pasp.end - pasp.body >= 8) {
    const across = bytes.readUInt32BE(pasp.body);
    const down = bytes.readUInt32BE(pasp.body + 4);
    // ffmpeg reads these signed and approximates a ratio of larger terms: such a box is left to it.
    if (across > MAX_PASP_TERM || down > MAX_PASP_TERM) return undefined;
    if (across > 0 && down > 0) return [across, down];
  }
  if (presented.stretched) return undefined;
  const { width, height } = stored;
  if (width && height && presented.width && presented.height && (presented.width !== width || presented.height !== height)) {
    return [height * presented.width, width * presented.height];
  }
  const avcC = children.find((box) => box.type === 'avcC');
  const sps = avcC ? avcConfigSps(bytes.subarray(avcC.body, avcC.end)) : undefined;
  return sps ? avcSampleAspect(sps) : undefined;
}

/** The sample description's codec and, for sound, its object type; for pictures, their size and pixel aspect. */
function sampleDescription(
  bytes: Buffer,
  stsd: Mp4Box,
  handler: string,
  presented: Presented,
): Pick<Mp4Track, 'codecTag' | 'objectType' | 'width' | 'height' | 'pixelAspect'> {
  if (bytes.readUInt32BE(stsd.body + 4) !== 1) throw new Unsupported('not exactly one sample description');
  const [entry] = mp4Boxes(bytes, stsd.body + 8, stsd.end);
  if (!entry) throw new Unsupported('empty sample description');
  const codecTag = entry.type;
  if (handler === 'vide' && entry.end - entry.body >= 28) {
    const size = { width: bytes.readUInt16BE(entry.body + 24), height: bytes.readUInt16BE(entry.body + 26) };
    return { codecTag, ...size, pixelAspect: pixelAspectOf(bytes, entry, size, presented) };
  }
  if (handler !== 'soun' || codecTag !== 'mp4a') return { codecTag };
  // Sound sample entry: 8 bytes of reference, then 20 of version-0 fields; QuickTime's versions 1 and 2 add 16 and 36.
  const version = bytes.readUInt16BE(entry.body + 8);
  const childrenAt = entry.body + 28 + (version === 1 ? 16 : version === 2 ? 36 : 0);
  if (childrenAt > entry.end) throw new Unsupported('sound description cut');
  const children = mp4Boxes(bytes, childrenAt, entry.end);
  const wave = children.find((box) => box.type === 'wave');
  const esds = children.find((box) => box.type === 'esds') ?? (wave ? mp4Child(bytes, wave, 'esds') : undefined);
  return { codecTag, objectType: esds ? esdsObjectType(bytes, esds) : undefined };
}

/**
 * Where a track header's display matrix starts: version/flags 4, times 8 or 16, track id 4,
 * reserved 4, duration 4 or 8, reserved 8, layer/group/volume/reserved 8.
 */
function tkhdMatrixAt(bytes: Buffer, tkhd: Mp4Box): number {
  return tkhd.body + 4 + (bytes[tkhd.body] === 1 ? 32 : 20) + 8 + 8;
}

/**
 * The track header's presentation size, in whole pixels (its 16.16 fixed point's integer part, as
 * ffmpeg takes it), and whether its display matrix stretches one axis more than the other (which
 * ffmpeg takes for the pixels' aspect, a case this reader leaves to ffprobe).
 */
function presentedSize(bytes: Buffer, tkhd: Mp4Box): Presented {
  const matrixAt = tkhdMatrixAt(bytes, tkhd);
  const at = matrixAt + 36;
  if (at + 8 > tkhd.end) return { width: 0, height: 0, stretched: false };
  const [a, b, c, d] = [0, 4, 12, 16].map((offset) => bytes.readInt32BE(matrixAt + offset)) as [number, number, number, number];
  const across = Math.hypot(a, c);
  const down = Math.hypot(b, d);
  const stretched = across > 0 && down > 0 && Math.abs(across / down - 1) > 0.01;
  return { width: bytes.readUInt32BE(at) >>> 16, height: bytes.readUInt32BE(at + 4) >>> 16, stretched };
}

/** The display matrix's rotation, clockwise, in quarter turns (what ffprobe reports negated). */
function matrixRotation(bytes: Buffer, tkhd: Mp4Box): number {
  const matrixAt = tkhdMatrixAt(bytes, tkhd);
  if (matrixAt + 36 > tkhd.end) return 0;
  const a = bytes.readInt32BE(matrixAt);
  const b = bytes.readInt32BE(matrixAt + 4);
  const degrees = Math.round((Math.atan2(b, a) * 180) / Math.PI);
  return (((Math.round(degrees / 90) * 90) % 360) + 360) % 360;
}

/**
 * A big-endian 32-bit number at `at`. The tables are read hundreds of thousands of entries at a
 * time; this keeps the loops free of `Buffer` method calls and their argument checks (the
 * caller checks a table's extent against its box before its loop reads it; the counts that
 * give the extent are read with `readUInt32BE`, which throws past the end).
 */
function u32(bytes: Buffer, at: number): number {
  return bytes[at]! * 0x1000000 + ((bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!);
}

/** A big-endian 64-bit offset, exact up to 2^53 bytes. */
function u64(bytes: Buffer, at: number): number {
  return u32(bytes, at) * 0x100000000 + u32(bytes, at + 4);
}

/** Chunk positions and sizes from the sample-to-chunk, size and offset tables, checked against each other. */
function chunkTable(bytes: Buffer, stbl: Mp4Box, fileSize: number): { chunks: Mp4Chunks; sampleCount: number; bytes: number } {
  const stsz = child(bytes, stbl, 'stsz');
  const uniformSize = bytes.readUInt32BE(stsz.body + 4);
  const sampleCount = bytes.readUInt32BE(stsz.body + 8);
  if (uniformSize === 0 && stsz.body + 12 + sampleCount * 4 > stsz.end) throw new Unsupported('sample sizes cut');
  const offsetsBox = mp4Child(bytes, stbl, 'stco') ?? mp4Child(bytes, stbl, 'co64');
  if (!offsetsBox) throw new Unsupported('no chunk offsets');
  const wide = offsetsBox.type === 'co64';
  const chunkCount = bytes.readUInt32BE(offsetsBox.body + 4);
  if (offsetsBox.body + 8 + chunkCount * (wide ? 8 : 4) > offsetsBox.end) throw new Unsupported('chunk offsets cut');
  const stsc = child(bytes, stbl, 'stsc');
  const runs = bytes.readUInt32BE(stsc.body + 4);
  if (stsc.body + 8 + runs * 12 > stsc.end || runs === 0) throw new Unsupported('sample-to-chunk table cut');
  const offsets = new Float64Array(chunkCount);
  const sizes = new Float64Array(chunkCount);
  let filled = 0;
  let sample = 0;
  let total = 0;
  for (let run = 0; run < runs; run++) {
    const at = stsc.body + 8 + run * 12;
    const firstChunk = u32(bytes, at);
    const perChunk = u32(bytes, at + 4);
    const lastChunk = run + 1 < runs ? u32(bytes, at + 12) - 1 : chunkCount;
    if (firstChunk < 1 || lastChunk < firstChunk - 1 || lastChunk > chunkCount || u32(bytes, at + 8) !== 1)
      throw new Unsupported('sample-to-chunk table inconsistent');
    for (let chunk = firstChunk; chunk <= lastChunk; chunk++) {
      if (chunk !== filled + 1) throw new Unsupported('sample-to-chunk table inconsistent');
      if (sample + perChunk > sampleCount) throw new Unsupported('more samples in chunks than sizes');
      let size = uniformSize * perChunk;
      if (uniformSize === 0) for (let i = 0; i < perChunk; i++) size += u32(bytes, stsz.body + 12 + (sample + i) * 4);
      const offset = wide ? u64(bytes, offsetsBox.body + 8 + (chunk - 1) * 8) : u32(bytes, offsetsBox.body + 8 + (chunk - 1) * 4);
      if (offset + size > fileSize) throw new Unsupported('chunk past the end of the file');
      offsets[filled] = offset;
      sizes[filled] = size;
      filled++;
      sample += perChunk;
      total += size;
    }
  }
  if (filled !== chunkCount || sample !== sampleCount) throw new Unsupported('sample tables disagree');
  return { chunks: { offsets, sizes }, sampleCount, bytes: total };
}

function sttsDuration(bytes: Buffer, stbl: Mp4Box, sampleCount: number): number {
  const stts = child(bytes, stbl, 'stts');
  const entries = bytes.readUInt32BE(stts.body + 4);
  if (stts.body + 8 + entries * 8 > stts.end) throw new Unsupported('time-to-sample table cut');
  let count = 0;
  let duration = 0;
  for (let i = 0; i < entries; i++) {
    const at = stts.body + 8 + i * 8;
    count += u32(bytes, at);
    duration += u32(bytes, at) * u32(bytes, at + 4);
  }
  if (count !== sampleCount) throw new Unsupported('time-to-sample table disagrees with the sizes');
  return duration;
}

/** Timescale and duration of an `mvhd` or `mdhd` box (both lay them out the same way). */
function clock(bytes: Buffer, box: Mp4Box): { timescale: number; duration: number } {
  const version = bytes[box.body];
  const at = box.body + 4 + (version === 1 ? 16 : 8);
  if (at + (version === 1 ? 12 : 8) > box.end) throw new Unsupported(`${box.type} cut`);
  return { timescale: bytes.readUInt32BE(at), duration: version === 1 ? Number(bytes.readBigUInt64BE(at + 4)) : bytes.readUInt32BE(at + 4) };
}

function parseTrack(bytes: Buffer, trak: Mp4Box, fileSize: number): Mp4Track {
  const mdia = child(bytes, trak, 'mdia');
  const hdlr = child(bytes, mdia, 'hdlr');
  const handler = bytes.toString('latin1', hdlr.body + 8, hdlr.body + 12);
  const { timescale, duration } = clock(bytes, child(bytes, mdia, 'mdhd'));
  const stbl = child(bytes, child(bytes, mdia, 'minf'), 'stbl');
  const table = chunkTable(bytes, stbl, fileSize);
  const tkhd = child(bytes, trak, 'tkhd');
  return {
    box: trak,
    handler,
    timescale,
    duration,
    ...sampleDescription(bytes, child(bytes, stbl, 'stsd'), handler, presentedSize(bytes, tkhd)),
    rotation: matrixRotation(bytes, tkhd),
    sampleCount: table.sampleCount,
    samplesDuration: sttsDuration(bytes, stbl, table.sampleCount),
    chunks: table.chunks,
    bytes: table.bytes,
  };
}

/**
 * Seconds of the movie's time before `track` begins: the empty edits (media time -1) that open
 * its edit list, as a muxer writes for a track that starts after the others. Decoders that read
 * the track alone drop them, so what the track holds then starts that much early.
 */
export function mp4TrackDelaySeconds(movie: Mp4Movie, track: Mp4Track): number {
  const { moov } = movie;
  const edts = mp4Child(moov, track.box, 'edts');
  const elst = edts && mp4Child(moov, edts, 'elst');
  if (!elst || !movie.timescale) return 0;
  const wide = moov[elst.body] === 1;
  const count = moov.readUInt32BE(elst.body + 4);
  const entryBytes = wide ? 20 : 12;
  let delay = 0;
  for (let index = 0, at = elst.body + 8; index < count && at + entryBytes <= elst.end; index++, at += entryBytes) {
    const mediaTime = wide ? Number(moov.readBigInt64BE(at + 8)) : moov.readInt32BE(at + 4);
    if (mediaTime !== -1) break;
    delay += wide ? Number(moov.readBigUInt64BE(at)) : moov.readUInt32BE(at);
  }
  return delay / movie.timescale;
}

/**
 * The movie index of `file`, or undefined when the file is not of the MP4 family or holds
 * something this reader leaves to ffmpeg (fragments, unusual tables, a damaged index).
 */
export async function readMp4Movie(file: string): Promise<Mp4Movie | undefined> {
  // Opening a FIFO would wait for a writer on one of the few threads of the pool: only plain files are read.
  if (!(await stat(file)).isFile()) return undefined;
  const handle = await open(file, 'r');
  try {
    const { size: fileSize } = await handle.stat();
    const moov = await readMoov(handle, fileSize);
    if (!moov) return undefined;
    const root: Mp4Box = { type: 'moov', start: 0, body: 8, end: moov.length };
    if (moov.readUInt32BE(0) === 1) root.body = 16;
    const children = mp4Boxes(moov, root.body, root.end);
    // A fragmented file keeps its samples in `moof` boxes the index does not list.
    if (children.some((box) => box.type === 'mvex')) return undefined;
    const mvhd = children.find((box) => box.type === 'mvhd');
    if (!mvhd) return undefined;
    const tracks = children.filter((box) => box.type === 'trak').map((trak) => parseTrack(moov, trak, fileSize));
    return { fileSize, moov, mvhd, ...clock(moov, mvhd), tracks };
  } catch (error) {
    if (error instanceof Unsupported || error instanceof RangeError) return undefined;
    throw error;
  } finally {
    await handle.close();
  }
}

/** Bytes of other data (another track's samples) a read may span to take two chunks in one call. */
const MAX_GAP_BYTES = 256 * 1024;
/** The most one read takes in. */
const MAX_SPAN_BYTES = 8 * 1024 * 1024;

/**
 * Reads the chunks' bytes, one after another, into one buffer. Chunks of one track lie between
 * another's, often a packet each: reading each alone would cost a round trip to the thread pool
 * per packet, so nearby chunks are read in one span and copied out of it.
 */
export async function readMp4Chunks(file: string, { offsets, sizes }: Mp4Chunks): Promise<Buffer> {
  const total = sizes.reduce((sum, size) => sum + size, 0);
  // Every byte is written below before the buffer is handed out.
  const out = Buffer.allocUnsafe(total);
  const handle = await open(file, 'r');
  try {
    let at = 0;
    for (let i = 0; i < offsets.length; ) {
      const start = offsets[i]!;
      let end = start + sizes[i]!;
      let j = i + 1;
      for (; j < offsets.length; j++) {
        const offset = offsets[j]!;
        if (offset < end || offset - end > MAX_GAP_BYTES || offset + sizes[j]! - start > MAX_SPAN_BYTES) break;
        end = offset + sizes[j]!;
      }
      const span = await readAt(handle, start, end - start);
      if (span.length !== end - start) throw new Error(`${file} ended inside a chunk of samples`);
      for (let k = i; k < j; k++) {
        span.copy(out, at, offsets[k]! - start, offsets[k]! - start + sizes[k]!);
        at += sizes[k]!;
      }
      i = j;
    }
    return out;
  } finally {
    await handle.close();
  }
}
