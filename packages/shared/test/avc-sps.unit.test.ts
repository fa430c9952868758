/**
 * The pixel aspect of an H.264 SPS, on headers written bit by bit here for the branches x264's
 * own do not take (scaling matrices in the SPS, picture order type 1, cropping); the headers
 * x264 writes are checked against ffprobe in worker-cpu's mp4-facts test.
 */
import { avcConfigSps, avcSampleAspect } from '../src/avc-sps.js';

/** Writes an SPS NAL unit: bits, Exp-Golomb codes, then the emulation prevention bytes. */
class SpsWriter {
  private readonly bits: number[] = [];

  u(count: number, value: number): this {
    for (let i = count - 1; i >= 0; i--) this.bits.push(Math.floor(value / 2 ** i) % 2);
    return this;
  }

  ue(value: number): this {
    const code = value + 1;
    const length = Math.floor(Math.log2(code));
    return this.u(length, 0).u(length + 1, code);
  }

  se(value: number): this {
    return this.ue(value > 0 ? 2 * value - 1 : -2 * value);
  }

  nal(): Uint8Array {
    const payload: number[] = [];
    const bits = [...this.bits, 1]; // rbsp_stop_one_bit
    while (bits.length % 8) bits.push(0);
    for (let at = 0; at < bits.length; at += 8) payload.push(bits.slice(at, at + 8).reduce((byte, bit) => byte * 2 + bit, 0));
    const escaped: number[] = [];
    let zeros = 0;
    for (const byte of payload) {
      if (zeros >= 2 && byte <= 3) {
        escaped.push(3);
        zeros = 0;
      }
      escaped.push(byte);
      zeros = byte === 0 ? zeros + 1 : 0;
    }
    return Uint8Array.from([0x67, ...escaped]);
  }
}

interface SpsShape {
  profile?: number;
  scalingLists?: boolean;
  pocType?: 0 | 1 | 2;
  cropping?: boolean;
  aspect?: { idc: number; width?: number; height?: number } | 'no-vui' | 'no-aspect';
}

function sps(shape: SpsShape): SpsWriter {
  const profile = shape.profile ?? 100;
  const out = new SpsWriter().u(8, profile).u(8, 0).u(8, 40).ue(0);
  if (profile === 100 || profile === 144) {
    out.ue(1).ue(0).ue(0).u(1, 0);
    out.u(1, shape.scalingLists ? 1 : 0);
    if (shape.scalingLists) {
      // Eight lists: the first and the seventh present, their deltas including a zero that ends the list early.
      for (let i = 0; i < 8; i++) {
        const present = i === 0 || i === 6;
        out.u(1, present ? 1 : 0);
        if (!present) continue;
        const size = i < 6 ? 16 : 64;
        for (let j = 0; j < size; j++) {
          if (i === 6 && j === 10) {
            out.se(-18); // back to 0 from 18 below: the list repeats its last value from here
            break;
          }
          out.se(i === 0 ? 1 : j === 0 ? 10 : 0);
        }
      }
    }
  }
  out.ue(0);
  out.ue(shape.pocType ?? 0);
  if ((shape.pocType ?? 0) === 0) out.ue(2);
  if (shape.pocType === 1) out.u(1, 0).se(-3).se(7).ue(3).se(1).se(-2).se(5);
  // Four reference frames, no gaps, 640x480 in macroblocks, fields (frame_mbs_only 0, then mb_adaptive), direct 8x8.
  out.ue(4).u(1, 0).ue(39).ue(29).u(1, 0).u(1, 1).u(1, 1);
  out.u(1, shape.cropping ? 1 : 0);
  if (shape.cropping) out.ue(0).ue(1).ue(0).ue(4);
  return out;
}

/** The whole SPS with its VUI's aspect part. */
function withAspect(shape: SpsShape): Uint8Array {
  const out = sps(shape);
  const aspect = shape.aspect ?? { idc: 1 };
  if (aspect === 'no-vui') return out.u(1, 0).nal();
  out.u(1, 1);
  if (aspect === 'no-aspect') return out.u(1, 0).u(1, 0).nal();
  out.u(1, 1).u(8, aspect.idc);
  if (aspect.idc === 255) out.u(16, aspect.width ?? 0).u(16, aspect.height ?? 0);
  return out.u(1, 0).nal();
}

describe('the pixel aspect an H.264 SPS states', () => {
  it('reads the standard table and ratios of their own', () => {
    expect(avcSampleAspect(withAspect({ aspect: { idc: 14 } }))).toEqual([4, 3]);
    expect(avcSampleAspect(withAspect({ aspect: { idc: 3 } }))).toEqual([10, 11]);
    expect(avcSampleAspect(withAspect({ aspect: { idc: 255, width: 5, height: 7 } }))).toEqual([5, 7]);
  });

  it('takes no VUI, no aspect, an unknown entry or a zero as square, as decoders do', () => {
    for (const aspect of ['no-vui', 'no-aspect', { idc: 0 }, { idc: 17 }, { idc: 255, width: 0, height: 9 }] as const) {
      expect(avcSampleAspect(withAspect({ aspect }))).toEqual([1, 1]);
    }
  });

  it('reads past scaling matrices, picture order type 1 and cropping', () => {
    expect(avcSampleAspect(withAspect({ scalingLists: true, aspect: { idc: 16 } }))).toEqual([2, 1]);
    expect(avcSampleAspect(withAspect({ pocType: 1, cropping: true, aspect: { idc: 255, width: 40, height: 33 } }))).toEqual([40, 33]);
    expect(avcSampleAspect(withAspect({ profile: 66, pocType: 2, aspect: { idc: 2 } }))).toEqual([12, 11]);
    // As ffmpeg's decoder reads them: the withdrawn High 4:4:4 (144) carries the chroma fields, 139 not.
    expect(avcSampleAspect(withAspect({ profile: 144, scalingLists: true, aspect: { idc: 14 } }))).toEqual([4, 3]);
    expect(avcSampleAspect(withAspect({ profile: 139, pocType: 2, aspect: { idc: 15 } }))).toEqual([3, 2]);
  });

  it('answers undefined for a unit that is no SPS or ends before its aspect', () => {
    const whole = withAspect({ scalingLists: true, aspect: { idc: 255, width: 4, height: 3 } });
    expect(avcSampleAspect(whole.subarray(0, whole.length - 4))).toBeUndefined();
    expect(avcSampleAspect(Uint8Array.from([0x68, ...whole.subarray(1)]))).toBeUndefined();
  });

  it('finds the first SPS of an avcC record', () => {
    const unit = withAspect({ aspect: { idc: 14 } });
    const record = Uint8Array.from([1, 100, 0, 40, 0xff, 0xe1, unit.length >> 8, unit.length & 0xff, ...unit, 1, 0, 4, 0x68, 1, 2, 3]);
    expect(avcConfigSps(record)).toEqual(unit);
    expect(avcConfigSps(record.subarray(0, 10))).toBeUndefined();
    expect(avcConfigSps(Uint8Array.from([1, 100, 0, 40, 0xff, 0xe0, 0, 0]))).toBeUndefined();
  });
});
