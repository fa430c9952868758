import { Ebur128Parser, SILENCE_LUFS } from '../src/analysis/audio-loudness.js';

/** The shape of ffmpeg's ebur128 log (5.x), one line per 100 ms, then the summary. */
function log(shortTerm: (string | number)[]): string {
  const lines = shortTerm.map(
    (value, k) =>
      `[Parsed_ebur128_0 @ 0x5623bc9cf3c0] t: ${((k + 1) * 0.1 - 0.0000227).toFixed(7)}  TARGET:-23 LUFS    M: -30.1 S:${String(value).padStart(6)}     I: -22.3 LUFS       LRA:  12.8 LU`,
  );
  return [
    'Stream mapping:',
    ...lines,
    'size=N/A time=00:00:01.00 bitrate=N/A speed= 572x',
    '[Parsed_ebur128_0 @ 0x56081fe923c0] Summary:',
    '',
    '  Integrated loudness:',
    '    I:         -22.4 LUFS',
    '    Threshold: -34.6 LUFS',
    '',
    '  Loudness range:',
    '    LRA:        13.5 LU',
    '    Threshold: -44.2 LUFS',
    '',
  ].join('\n');
}

describe('Ebur128Parser', () => {
  it('keeps one short-term value per step and reads the summary, whatever the chunking', () => {
    const text = log([-120.7, -50, -40, -30, -20, -19, -18, -17, -16, -15, -14, -13]);
    for (const chunkSize of [7, 64, text.length]) {
      const parser = new Ebur128Parser(0.5);
      for (let at = 0; at < text.length; at += chunkSize) parser.push(text.slice(at, at + chunkSize));
      expect(parser.result()).toEqual({ stepSeconds: 0.5, shortTermLufs: [-20, -15], integratedLufs: -22.4, loudnessRangeLu: 13.5 });
    }
  });

  it('reads -inf as silence and keeps every value at a 0.1 s step', () => {
    const parser = new Ebur128Parser(0.1);
    parser.push(log(['-inf', -30, 'nan']));
    expect(parser.result().shortTermLufs).toEqual([SILENCE_LUFS, -30, SILENCE_LUFS]);
  });

  it('gives an empty track for a log with no measurements', () => {
    const parser = new Ebur128Parser();
    parser.push('Output #0, null, to pipe:\n');
    expect(parser.result()).toEqual({ stepSeconds: 0.5, shortTermLufs: [], integratedLufs: null, loudnessRangeLu: null });
  });
});
