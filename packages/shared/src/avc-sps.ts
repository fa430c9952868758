/**
 * The sample (pixel) aspect ratio an H.264 sequence parameter set states in its VUI, read the way
 * decoders read it (ITU-T H.264, 7.3.2.1.1 and E.1.1). An MP4 usually states the same ratio in a
 * `pasp` box too, which then takes precedence; this is for the files whose only word on it is
 * the stream's own header.
 */

/** The ratios `aspect_ratio_idc` 1 to 16 stand for (table E-1); 255 states its own. */
const TABLE_E1: readonly (readonly [number, number])[] = [
  [1, 1],
  [12, 11],
  [10, 11],
  [16, 11],
  [40, 33],
  [24, 11],
  [20, 11],
  [32, 11],
  [80, 33],
  [18, 11],
  [15, 11],
  [64, 33],
  [160, 99],
  [4, 3],
  [3, 2],
  [2, 1],
];
const EXTENDED_SAR = 255;

/**
 * The profiles whose SPS carries chroma format, bit depths and scaling matrices, as ffmpeg's
 * decoder reads them (the decoder's reading is what sizes the frames: it includes the withdrawn
 * High 4:4:4, 144, and not the later 134, 135 and 139).
 */
const HIGH_PROFILES = new Set([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 144]);

class SpsCut extends Error {}

/** Bits of a NAL unit's payload, emulation prevention bytes (00 00 03) taken out. */
class BitReader {
  private readonly bytes: Uint8Array;
  private bit = 0;

  constructor(nal: Uint8Array) {
    const out: number[] = [];
    let zeros = 0;
    for (const byte of nal) {
      if (zeros >= 2 && byte === 3) {
        zeros = 0;
        continue;
      }
      zeros = byte === 0 ? zeros + 1 : 0;
      out.push(byte);
    }
    this.bytes = Uint8Array.from(out);
  }

  u(count: number): number {
    let value = 0;
    for (let i = 0; i < count; i++) {
      const byte = this.bytes[this.bit >> 3];
      if (byte === undefined) throw new SpsCut();
      value = value * 2 + ((byte >> (7 - (this.bit & 7))) & 1);
      this.bit++;
    }
    return value;
  }

  /** Exp-Golomb, unsigned. */
  ue(): number {
    let zeros = 0;
    while (this.u(1) === 0) {
      if (++zeros > 31) throw new SpsCut();
    }
    return 2 ** zeros - 1 + this.u(zeros);
  }

  /** Exp-Golomb, signed. */
  se(): number {
    const code = this.ue();
    return code % 2 === 1 ? (code + 1) / 2 : -code / 2;
  }
}

function skipScalingList(bits: BitReader, size: number): void {
  let last = 8;
  let next = 8;
  for (let j = 0; j < size; j++) {
    if (next !== 0) next = (last + bits.se() + 256) % 256;
    last = next === 0 ? last : next;
  }
}

/** Reads up to `frame_cropping`, the fields between the profile and the VUI flag. */
function skipToVui(bits: BitReader): void {
  const profile = bits.u(8);
  bits.u(16); // constraint flags, level
  bits.ue(); // seq_parameter_set_id
  if (HIGH_PROFILES.has(profile)) {
    const chroma = bits.ue();
    if (chroma === 3) bits.u(1);
    bits.ue(); // bit depths
    bits.ue();
    bits.u(1);
    const scalingMatrices = bits.u(1) === 1;
    const lists = scalingMatrices ? (chroma === 3 ? 12 : 8) : 0;
    for (let i = 0; i < lists; i++) {
      if (bits.u(1) === 1) skipScalingList(bits, i < 6 ? 16 : 64);
    }
  }
  bits.ue(); // log2_max_frame_num_minus4
  const pocType = bits.ue();
  if (pocType === 0) bits.ue();
  else if (pocType === 1) {
    bits.u(1);
    bits.se();
    bits.se();
    const cycle = bits.ue();
    for (let i = 0; i < cycle; i++) bits.se();
  }
  bits.ue(); // max_num_ref_frames
  bits.u(1);
  bits.ue(); // picture size in macroblocks
  bits.ue();
  if (!bits.u(1)) bits.u(1); // frame_mbs_only, else mb_adaptive_frame_field
  bits.u(1);
  if (bits.u(1)) for (let i = 0; i < 4; i++) bits.ue(); // frame cropping
}

/**
 * The SAR of an SPS NAL unit (its one-byte header included) as [width, height]; [1, 1] when it
 * states none or an unknown one (as decoders take it), undefined when the unit is not an SPS or
 * ends before it says.
 */
export function avcSampleAspect(nal: Uint8Array): readonly [number, number] | undefined {
  if (nal.length < 4 || (nal[0]! & 0x1f) !== 7) return undefined;
  const bits = new BitReader(nal.subarray(1));
  try {
    skipToVui(bits);
    if (!bits.u(1) || !bits.u(1)) return [1, 1]; // no VUI, or no aspect in it
    const idc = bits.u(8);
    if (idc === EXTENDED_SAR) {
      const width = bits.u(16);
      const height = bits.u(16);
      return width && height ? [width, height] : [1, 1];
    }
    return TABLE_E1[idc - 1] ?? [1, 1];
  } catch (error) {
    if (error instanceof SpsCut) return undefined;
    throw error;
  }
}

/**
 * The first SPS of an `avcC` box's body (AVCDecoderConfigurationRecord), or undefined when the
 * record is cut or holds none.
 */
export function avcConfigSps(record: Uint8Array): Uint8Array | undefined {
  if (record.length < 8 || (record[5]! & 0x1f) === 0) return undefined;
  const length = (record[6]! << 8) | record[7]!;
  return 8 + length <= record.length ? record.subarray(8, 8 + length) : undefined;
}
