/**
 * The facts of an MP4 read from its index equal what ffprobe says of the same file, across the
 * shapes real uploads take (index at either end, NTSC rates, rotation, edit lists, HEVC, odd
 * sizes, variable rate, QuickTime and 3GP brands); what the reader leaves alone goes to ffprobe.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ffprobeFacts, probe } from '../src/analysis/ffmpeg.js';
import { mp4Facts } from '../src/analysis/mp4-facts.js';
import { CpuPool } from '../src/analysis/pool.js';
import { describeWithFixtures, fixtures } from '../../../tests/helpers/fixtures.js';
import { generateVideo, withClaimedDuration, TOOLS } from '../../../tests/helpers/media.js';

const run = promisify(execFile);
const MP4_FIXTURES = fixtures('video', ['bbb_h264_aac_60s.mp4', 'bbb_hevc_aac_10s.mp4', 'talking_head_h264_aac_24s.mp4']);
let dir: string;
let source: string;
let pool: CpuPool;

async function ffmpeg(...args: string[]): Promise<void> {
  await run('ffmpeg', ['-v', 'error', '-y', ...args]);
}

/** A file of `name` made from the generated source by `args` (the output options). */
async function variant(name: string, ...args: string[]): Promise<string> {
  const file = path.join(dir, name);
  await ffmpeg('-i', source, ...args, file);
  return file;
}

/**
 * Takes the pixels' aspect out of an MP4's boxes: its `pasp` box (ffmpeg writes one) renamed
 * `free`, and with `stored` (the coded picture size) the track header's presentation size set
 * to it, so that only the stream's own header states the aspect. Files of one video track only.
 */
async function withoutAspectBoxes(file: string, stored?: { width: number; height: number }): Promise<string> {
  const bytes = await readFile(file);
  const pasp = bytes.indexOf('pasp', 0, 'latin1');
  expect(pasp).toBeGreaterThan(0);
  bytes.write('free', pasp, 'latin1');
  if (stored) {
    const tkhd = bytes.indexOf('tkhd', 0, 'latin1') + 4;
    const sizeAt = tkhd + 4 + (bytes[tkhd] === 1 ? 32 : 20) + 16 + 36;
    bytes.writeUInt32BE(stored.width * 65536, sizeAt);
    bytes.writeUInt32BE(stored.height * 65536, sizeAt + 4);
  }
  await writeFile(file, bytes);
  return file;
}

/** An H.264 variant (`args`: its filter and encoder options) through {@link withoutAspectBoxes}. */
async function withoutPasp(name: string, stored: { width: number; height: number } | undefined, ...args: string[]): Promise<string> {
  return withoutAspectBoxes(await variant(name, ...args, '-c:v', 'libx264', '-preset', 'ultrafast', '-an'), stored);
}

beforeAll(async () => {
  pool = new CpuPool({ threads: 1 });
  dir = await mkdtemp(path.join(os.tmpdir(), 'clipline-mp4-facts-'));
  source = (await generateVideo({ path: path.join(dir, 'source.mp4'), segments: [2, 2], width: 320, height: 180, fps: 24 })).path;
}, 60_000);

afterAll(async () => {
  await pool.close();
  await rm(dir, { recursive: true, force: true });
});

const shapes: [string, () => Promise<string>][] = [
  ['index after the samples', async () => source],
  ['index in front', () => variant('faststart.mp4', '-c', 'copy', '-movflags', '+faststart')],
  ['29.97 fps, no sound', () => variant('ntsc.mp4', '-r', '30000/1001', '-c:v', 'libx264', '-preset', 'ultrafast', '-an')],
  ['rotated a quarter turn', () => variant('rot90.mp4', '-c', 'copy', '-metadata:s:v', 'rotate=90')],
  ['rotated three quarters', () => variant('rot270.mp4', '-c', 'copy', '-metadata:s:v', 'rotate=270')],
  ['upside down', () => variant('rot180.mp4', '-c', 'copy', '-metadata:s:v', 'rotate=180')],
  [
    'HEVC tagged hvc1',
    () => variant('hvc1.mp4', '-c:v', 'libx265', '-preset', 'ultrafast', '-tag:v', 'hvc1', '-x265-params', 'log-level=error', '-c:a', 'copy'),
  ],
  ['non-square pixels', () => variant('sar.mp4', '-c:v', 'libx264', '-preset', 'ultrafast', '-vf', 'setsar=4/3', '-c:a', 'copy')],
  ["non-square pixels stated by the track header's size (no pasp box)", () => withoutPasp('sar-in-tkhd.mp4', undefined, '-vf', 'setsar=2')],
  ["5:7 pixels stated by the track header's size, rounded down there", () => withoutPasp('odd-sar-in-tkhd.mp4', undefined, '-vf', 'scale=352:288,setsar=5/7')],
  ['non-square pixels stated only in the H.264 header', () => withoutPasp('sar-in-sps.mp4', { width: 320, height: 180 }, '-vf', 'setsar=2')],
  [
    'DV-like: interlaced, 10:11 pixels from the standard table, only in the H.264 header',
    () => withoutPasp('dv-in-sps.mp4', { width: 720, height: 480 }, '-vf', 'scale=720:480,setsar=10/11', '-x264-params', 'interlaced=1:bframes=0'),
  ],
  [
    '5:7 pixels (a ratio of its own), only in the H.264 header',
    () => withoutPasp('odd-sar-in-sps.mp4', { width: 352, height: 288 }, '-vf', 'scale=352:288,setsar=5/7'),
  ],
  ['an odd picture size', () => variant('odd.mp4', '-c:v', 'libx264', '-preset', 'ultrafast', '-vf', 'scale=321:181', '-pix_fmt', 'yuv444p', '-an')],
  ['QuickTime', () => variant('movie.mov', '-c', 'copy')],
  ['3GP', () => variant('phone.3gp', '-c:v', 'copy', '-c:a', 'aac', '-ac', '1', '-ar', '16000')],
  [
    'an edit list (cut off a keyframe)',
    async () => {
      const file = path.join(dir, 'edit-list.mp4');
      await ffmpeg('-ss', '1.3', '-i', source, '-c', 'copy', file);
      return file;
    },
  ],
  [
    'a variable rate (10 fps, then 30)',
    async () => {
      const parts = [path.join(dir, 'part-10.mp4'), path.join(dir, 'part-30.mp4')];
      for (const [index, rate] of [10, 30].entries()) {
        await ffmpeg(
          '-f',
          'lavfi',
          '-i',
          `testsrc=size=160x90:rate=${rate}`,
          '-t',
          '2',
          '-c:v',
          'libx264',
          '-preset',
          'ultrafast',
          '-video_track_timescale',
          '10240',
          parts[index]!,
        );
      }
      const list = path.join(dir, 'parts.txt');
      await writeFile(list, parts.map((part) => `file '${part}'`).join('\n'));
      const file = path.join(dir, 'vfr.mp4');
      await ffmpeg('-f', 'concat', '-safe', '0', '-i', list, '-c', 'copy', file);
      return file;
    },
  ],
  [
    'two hours, one chunk a frame (an index of nearly half a million samples)',
    async () => {
      const file = path.join(dir, 'two-hours.mp4');
      await ffmpeg('-stream_loop', '1799', '-i', source, '-c', 'copy', file);
      return file;
    },
  ],
  [
    'a header claiming more than the samples',
    async () => {
      const file = path.join(dir, 'claims-more.mp4');
      await withClaimedDuration(source, file, 9);
      return file;
    },
  ],
];

it.each(shapes)('%s: the same facts as ffprobe, in this thread and in a pool thread', async (_shape, make) => {
  const file = await make();
  const fromIndex = await mp4Facts(file);
  expect(fromIndex).toBeDefined();
  expect(fromIndex).toEqual(await ffprobeFacts(TOOLS, file));
  expect(await pool.mp4Facts(file)).toEqual(fromIndex);
});

describe('non-square pixels', () => {
  it('give the picture size players show, wider or narrower than the stored one, turned with the picture', async () => {
    const encoded = (name: string, filter: string) => variant(name, '-t', '0.5', '-vf', filter, '-c:v', 'libx264', '-preset', 'ultrafast', '-an');
    const hdv = await encoded('hdv.mp4', 'scale=1440:1080,setsar=4/3');
    const turned = path.join(dir, 'hdv-turned.mp4');
    await ffmpeg('-i', hdv, '-c', 'copy', '-metadata:s:v', 'rotate=90', turned);
    const cases: [string, { width: number; height: number }][] = [
      [hdv, { width: 1920, height: 1080 }],
      [await encoded('dv.mp4', 'scale=720:480,setsar=8/9'), { width: 640, height: 480 }],
      [turned, { width: 810, height: 1440 }],
    ];
    for (const [file, shown] of cases) {
      expect(await mp4Facts(file)).toMatchObject(shown);
      expect(await ffprobeFacts(TOOLS, file)).toMatchObject(shown);
    }
  });

  it('a display matrix that stretches one axis (which ffmpeg takes for the aspect) goes to ffprobe', async () => {
    const file = await withoutPasp('stretched.mp4', { width: 320, height: 180 }, '-t', '0.5');
    const bytes = await readFile(file);
    const tkhd = bytes.indexOf('tkhd', 0, 'latin1') + 4;
    bytes.writeInt32BE(2 * 65536, tkhd + 4 + (bytes[tkhd] === 1 ? 32 : 20) + 16);
    await writeFile(file, bytes);
    expect(await mp4Facts(file)).toBeUndefined();
    expect(await probe(TOOLS, file)).toMatchObject({ width: 640, height: 180 });
  });

  it('a pasp ratio of terms past 32767 (which ffmpeg reads signed, or approximates) goes to ffprobe', async () => {
    const file = await variant('huge-pasp.mp4', '-t', '0.5', '-vf', 'setsar=4/3', '-c:v', 'libx264', '-preset', 'ultrafast', '-an');
    const bytes = await readFile(file);
    const pasp = bytes.indexOf('pasp', 0, 'latin1') + 4;
    bytes.writeUInt32BE(0x80000001, pasp);
    await writeFile(file, bytes);
    expect(await mp4Facts(file)).toBeUndefined();
    // ffmpeg ignores that box, and takes the stream header's 4:3.
    expect(await probe(TOOLS, file)).toMatchObject({ width: 426, height: 180 });
  });

  it("an HEVC that states its pixels' aspect only in its own header goes to ffprobe, which reads it", async () => {
    const file = await variant(
      'hevc-sar.mp4',
      '-t',
      '0.5',
      '-vf',
      'setsar=2',
      '-c:v',
      'libx265',
      '-preset',
      'ultrafast',
      '-tag:v',
      'hvc1',
      '-x265-params',
      'log-level=error',
      '-an',
    );
    await withoutAspectBoxes(file, { width: 320, height: 180 });
    expect(await mp4Facts(file)).toBeUndefined();
    expect(await probe(TOOLS, file)).toMatchObject({ width: 640, height: 180 });
  });
});

describeWithFixtures(MP4_FIXTURES, 'the real MP4 fixtures', () => {
  it.each(MP4_FIXTURES.files)('%s: the same facts as ffprobe', async (file) => {
    expect(await mp4Facts(file)).toEqual(await ffprobeFacts(TOOLS, file));
  });
});

describe('left to ffprobe', () => {
  it('a WebM, MPEG-4 part 2 in an MP4, a fragmented MP4 and a cut-off file', async () => {
    const webm = path.join(dir, 'clip.webm');
    await ffmpeg('-i', source, '-t', '1', '-c:v', 'libvpx', '-deadline', 'realtime', '-c:a', 'libvorbis', webm);
    const part2 = await variant('part2.mp4', '-c:v', 'mpeg4', '-an');
    const fragmented = await variant('fragmented.mp4', '-c', 'copy', '-movflags', 'frag_keyframe+empty_moov');
    const cut = await variant('cut.mp4', '-c', 'copy', '-movflags', '+faststart');
    await truncate(cut, (await stat(cut)).size - 4000);
    for (const file of [webm, part2, fragmented, cut]) {
      expect(await mp4Facts(file)).toBeUndefined();
      expect(await pool.mp4Facts(file)).toBeUndefined();
      // probe still answers, through ffprobe, with either reader.
      const facts = await ffprobeFacts(TOOLS, file);
      expect(await probe(TOOLS, file)).toEqual(facts);
      expect(await probe(TOOLS, file, undefined, { readIndex: (name) => pool.mp4Facts(name) })).toEqual(facts);
    }
  });

  it('a FIFO is not opened (it would hold a thread of the pool until someone writes)', async () => {
    const fifo = path.join(dir, 'facts.fifo');
    await run('mkfifo', [fifo]);
    expect(await mp4Facts(fifo)).toBeUndefined();
    expect(await pool.mp4Facts(fifo)).toBeUndefined();
  });

  it('a file that is not there: the pool rejects, naming it, and probe turns to ffprobe', async () => {
    const missing = path.join(dir, 'missing.mp4');
    await expect(pool.mp4Facts(missing)).rejects.toThrow(/missing\.mp4/);
    await expect(probe(TOOLS, missing, undefined, { readIndex: (name) => pool.mp4Facts(name) })).rejects.toThrow(/not a readable video \(ffprobe: /);
  });

  it("a file that is no video gets ffprobe's reason", async () => {
    const text = path.join(dir, 'text.mp4');
    await writeFile(text, 'not a video at all');
    expect(await mp4Facts(text)).toBeUndefined();
    const error = await probe(TOOLS, text).catch((thrown: Error) => thrown);
    expect((error as Error).message).toMatch(/not a readable video \(ffprobe: .*text\.mp4: Invalid data/);
    expect((error as Error).message).not.toContain(dir);
  });
});
