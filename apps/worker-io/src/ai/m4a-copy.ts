/**
 * Copies the first sound track of an MP4 into an `.m4a` of its own, in this process: the track's
 * index is kept as it is (sample descriptions, timing, edit list) except for the chunk offsets,
 * which point into the new file, and the samples are read from the source in spans of nearby
 * chunks. That is what `ffmpeg -map 0:a:0 -c:a copy` writes, without starting ffmpeg and without
 * demuxing the picture (its bytes are read only where they lie between nearby sound chunks).
 */
import { writeFile } from 'node:fs/promises';
import { mp4Boxes, mp4TrackDelaySeconds, readMp4Chunks, readMp4Movie, type Mp4Box, type Mp4Movie, type Mp4Track } from '@clipline/shared';

/** MPEG-4 audio and the three MPEG-2 AAC profiles: what ffmpeg names `aac`. */
const AAC_OBJECT_TYPES = new Set([0x40, 0x66, 0x67, 0x68]);

export type TrackCopy = { copied: true } | { copied: false; reason: 'no audio' | 'not aac' | 'starts late' | 'too large' };

/**
 * How late a sound track may start after the earliest track and still be copied. A copy keeps
 * the delay only in its edit list, which decoders of a lone sound file drop: its words would be
 * timed that much early. Past this it is encoded instead, the delay as silence.
 */
export const LATE_START_SECONDS = 0.05;

/** Seconds `track` starts after the movie's earliest track. */
export function lateStartSeconds(movie: Mp4Movie, track: Mp4Track): number {
  return mp4TrackDelaySeconds(movie, track) - Math.min(...movie.tracks.map((each) => mp4TrackDelaySeconds(movie, each)));
}

function box(type: string, ...parts: Buffer[]): Buffer {
  const header = Buffer.alloc(8);
  const size = 8 + parts.reduce((sum, part) => sum + part.length, 0);
  header.writeUInt32BE(size, 0);
  header.write(type, 4, 'latin1');
  return Buffer.concat([header, ...parts], size);
}

/** `stco`, or `co64` once an offset needs more than 32 bits. */
function offsetsBox(offsets: readonly number[]): Buffer {
  const wide = offsets.some((offset) => offset > 0xffffffff);
  const body = Buffer.alloc(8 + offsets.length * (wide ? 8 : 4));
  body.writeUInt32BE(offsets.length, 4);
  offsets.forEach((offset, index) => {
    if (wide) body.writeBigUInt64BE(BigInt(offset), 8 + index * 8);
    else body.writeUInt32BE(offset, 8 + index * 4);
  });
  return box(wide ? 'co64' : 'stco', body);
}

/**
 * Rebuilds `parent` from `moov`'s bytes: the boxes on the path to the sample table are rebuilt
 * (their sizes change with the offsets table), `stco`/`co64` replaced, `dropped` types left out,
 * everything else copied byte for byte.
 */
function rebuild(moov: Buffer, parent: Mp4Box, offsets: Buffer, dropped: ReadonlySet<string>): Buffer {
  // Containers have no fields of their own: a rebuilt one gets a plain 8-byte header.
  const parts: Buffer[] = [];
  for (const child of mp4Boxes(moov, parent.body, parent.end)) {
    if (dropped.has(child.type)) continue;
    if (child.type === 'stco' || child.type === 'co64') parts.push(offsets);
    else if (['mdia', 'minf', 'stbl'].includes(child.type)) parts.push(rebuild(moov, child, offsets, dropped));
    else parts.push(moov.subarray(child.start, child.end));
  }
  return box(parent.type, ...parts);
}

/** `ftyp` of an iTunes-style audio file, as ffmpeg's `ipod` muxer writes for `.m4a`. */
function fileType(): Buffer {
  const body = Buffer.alloc(16);
  body.write('M4A ', 0, 'latin1');
  body.writeUInt32BE(0x200, 4);
  body.write('M4A ', 8, 'latin1');
  body.write('isom', 12, 'latin1');
  return box('ftyp', body);
}

/**
 * The movie header with the sound track's length (its `tkhd` duration, on the movie's clock)
 * as the movie's: the picture may have run longer.
 */
function movieHeader(movie: Mp4Movie, track: Mp4Track): Buffer {
  const { moov, mvhd } = movie;
  const header = Buffer.from(moov.subarray(mvhd.start, mvhd.end));
  const tkhd = mp4Boxes(moov, track.box.body, track.box.end).find((child) => child.type === 'tkhd');
  if (!tkhd) return header;
  const wide = moov[tkhd.body] === 1;
  const duration = wide ? moov.readBigUInt64BE(tkhd.body + 28) : BigInt(moov.readUInt32BE(tkhd.body + 20));
  const at = mvhd.body - mvhd.start + (moov[mvhd.body] === 1 ? 24 : 16);
  if (moov[mvhd.body] === 1) header.writeBigUInt64BE(duration, at);
  else if (duration <= 0xffffffffn) header.writeUInt32BE(Number(duration), at);
  return header;
}

/** The `moov` of the copy: the movie header and the one sound track, its chunks at `offsets`. */
function audioMoov(movie: Mp4Movie, track: Mp4Track, offsets: readonly number[]): Buffer {
  // Track references name tracks the copy does not have.
  const trak = rebuild(movie.moov, track.box, offsetsBox(offsets), new Set(['tref']));
  return box('moov', movieHeader(movie, track), trak);
}

/**
 * Writes the first sound track of `source` to `target` when it is AAC and at most `limitBytes`
 * long. Answers undefined when the file is not an MP4 this reader follows: ffmpeg decides then.
 */
export async function copyAacTrack(source: string, target: string, limitBytes: number): Promise<TrackCopy | undefined> {
  const movie = await readMp4Movie(source);
  if (!movie) return undefined;
  const track = movie.tracks.find((candidate) => candidate.handler === 'soun');
  if (!track) return { copied: false, reason: 'no audio' };
  if (track.codecTag !== 'mp4a' || track.objectType === undefined || !AAC_OBJECT_TYPES.has(track.objectType)) return { copied: false, reason: 'not aac' };
  if (track.sampleCount === 0) return undefined;
  if (lateStartSeconds(movie, track) > LATE_START_SECONDS) return { copied: false, reason: 'starts late' };
  const ftyp = fileType();
  // The offsets' table has the same length whatever they are, so the index's size is known first.
  const { sizes } = track.chunks;
  const moovSize = audioMoov(movie, track, new Array<number>(sizes.length).fill(0)).length;
  const mdatHeader = 8;
  const size = ftyp.length + moovSize + mdatHeader + track.bytes;
  if (size > limitBytes) return { copied: false, reason: 'too large' };
  const offsets: number[] = [];
  let at = ftyp.length + moovSize + mdatHeader;
  for (const size of sizes) {
    offsets.push(at);
    at += size;
  }
  const moov = audioMoov(movie, track, offsets);
  const samples = await readMp4Chunks(source, track.chunks);
  const mdat = Buffer.alloc(mdatHeader);
  mdat.writeUInt32BE(mdatHeader + samples.length, 0);
  mdat.write('mdat', 4, 'latin1');
  await writeFile(target, Buffer.concat([ftyp, moov, mdat, samples]));
  return { copied: true };
}
