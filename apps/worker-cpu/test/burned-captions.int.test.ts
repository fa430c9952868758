/**
 * Burned captions: the ASS document's layout per aspect, and the real ffmpeg/libass drawing the
 * words into a rendered clip: while a word is said the lower part of the picture changes and the
 * upper part does not; without words nothing is drawn.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { CpuPool } from '../src/analysis/pool.js';
import { assFilter, type CaptionWord, captionDocument, wordsToBurn } from '../src/render/burned-captions.js';
import { renderClip, type RenderSettings } from '../src/render/render-clip.js';
import { TOOLS } from '../../../tests/helpers/media.js';

const run = promisify(execFile);

const WORDS: CaptionWord[] = [
  { startSeconds: 2.0, endSeconds: 2.4, text: 'Watch' },
  { startSeconds: 2.45, endSeconds: 2.8, text: 'your' },
  { startSeconds: 2.85, endSeconds: 3.3, text: 'disks.' },
  { startSeconds: 4.5, endSeconds: 5.0, text: 'Keep' },
  { startSeconds: 5.05, endSeconds: 5.4, text: '{\\b1}alerts' },
];

describe('the caption document', () => {
  it('sizes text for the picture, breaks lines at pauses and sentence ends, highlights each spoken word', () => {
    const tall = captionDocument(WORDS, { startSeconds: 1, endSeconds: 6 }, { width: 1080, height: 1920, aspect: '9:16' })!;
    const square = captionDocument(WORDS, { startSeconds: 1, endSeconds: 6 }, { width: 1080, height: 1080, aspect: '1:1' })!;
    expect(tall).toContain('PlayResX: 1080\nPlayResY: 1920');
    expect(tall).toMatch(/Style: Caption,DejaVu Sans,96,/);
    expect(square).toMatch(/Style: Caption,DejaVu Sans,70,/);
    const events = tall.split('\n').filter((line) => line.startsWith('Dialogue:'));
    expect(events).toHaveLength(WORDS.length);
    // Clip time: the first word at 1.00 s into the clip; its line holds the sentence's three words.
    expect(events[0]).toMatch(/^Dialogue: 0,0:00:01\.00,0:00:01\.45,Caption,,0,0,0,,\{\\c&H0000D7FF&\}Watch\{\\c&H00FFFFFF&\} your disks\.$/);
    // A new line after the sentence end; override blocks in the text are stripped.
    expect(events[3]).toContain('Keep');
    expect(events[3]).not.toContain('disks');
    expect(events[4]).toContain('\\c&H0000D7FF&}b1alerts');
    expect(captionDocument(WORDS, { startSeconds: 10, endSeconds: 15 }, { width: 360, height: 640, aspect: '9:16' })).toBeNull();
  });

  it('shows each word once: a segment whose word was counted in its neighbour is not spread out again', () => {
    const segments = [
      {
        startSeconds: 0,
        endSeconds: 2,
        text: 'Hello there.',
        words: [
          { startSeconds: 0, endSeconds: 0.5, text: 'Hello' },
          { startSeconds: 0.5, endSeconds: 1.2, text: 'there.' },
          { startSeconds: 1.6, endSeconds: 2.3, text: 'Yes.' },
        ],
      },
      { startSeconds: 2, endSeconds: 2.4, text: 'Yes.' },
      {
        startSeconds: 2.4,
        endSeconds: 5,
        text: 'Go now.',
        words: [
          { startSeconds: 2.5, endSeconds: 3, text: 'Go' },
          { startSeconds: 3, endSeconds: 3.5, text: 'now.' },
        ],
      },
    ];
    expect(wordsToBurn(segments).map((word) => word.text)).toEqual(['Hello', 'there.', 'Yes.', 'Go', 'now.']);
    // Without any word timestamps, each segment's text is spread over it.
    const spread = wordsToBurn(segments.map(({ words: _words, ...segment }) => segment));
    expect(spread.map((word) => [word.text, word.startSeconds])).toEqual([
      ['Hello', 0],
      ['there.', 1],
      ['Yes.', 2],
      ['Go', 2.4],
      ['now.', 3.7],
    ]);
  });

  it('breaks lines after sentence ends of any script, joins unspaced scripts without spaces, and never stacks two events', () => {
    const words: CaptionWord[] = [
      { startSeconds: 0, endSeconds: 0.3, text: '今日' },
      { startSeconds: 0.3, endSeconds: 0.5, text: 'は' },
      { startSeconds: 0.5, endSeconds: 0.9, text: '晴れ。' },
      { startSeconds: 1.0, endSeconds: 1.4, text: 'नमस्ते।' },
      { startSeconds: 1.5, endSeconds: 1.8, text: 'same' },
      { startSeconds: 1.5, endSeconds: 1.9, text: 'time' },
    ];
    const document = captionDocument(words, { startSeconds: 0, endSeconds: 3 }, { width: 1920, height: 1080, aspect: '16:9' })!;
    const events = document.split('\n').filter((line) => line.startsWith('Dialogue:'));
    const plain = events.map((event) =>
      event
        .replace(/\{[^}]*\}/g, '')
        .split(',,')
        .at(-1),
    );
    expect(plain.slice(0, 3)).toEqual(['今日は晴れ。', '今日は晴れ。', '今日は晴れ。']);
    expect(plain[3]).toBe('नमस्ते।');
    const starts = events.map((event) => event.split(',')[1]);
    expect(new Set(starts).size).toBe(starts.length);
  });

  it('refuses a file path a filter graph would misread', () => {
    expect(assFilter('/tmp/clipline-captions-abc/captions.ass')).toBe('ass=filename=/tmp/clipline-captions-abc/captions.ass');
    expect(() => assFilter("/tmp/it's:here.ass")).toThrow(/cannot be given/);
  });
});

describe('a clip rendered with burned captions', () => {
  let dir: string;
  let pool: CpuPool;
  let settings: RenderSettings;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'clipline-captions-test-'));
    pool = new CpuPool({ threads: 2 });
    settings = { tools: TOOLS, pool };
    // A still, flat picture: any change in a frame is the captions.
    await run('ffmpeg', [
      '-v',
      'error',
      '-y',
      '-f',
      'lavfi',
      '-i',
      'color=c=0x304060:size=640x360:rate=25:duration=8',
      '-c:v',
      'libx264',
      '-pix_fmt',
      'yuv420p',
      path.join(dir, 'still.mp4'),
    ]);
  }, 60_000);

  afterAll(async () => {
    await pool.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Mean absolute difference of a band of two frames (fractions of the height), 0-255. */
  async function bandDifference(a: string, b: string, seconds: number, band: [number, number]): Promise<number> {
    const frame = async (file: string) =>
      (
        await run('ffmpeg', ['-v', 'error', '-ss', String(seconds), '-i', file, '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'gray', 'pipe:1'], {
          encoding: 'buffer',
        })
      ).stdout as Buffer;
    const [x, y] = await Promise.all([frame(a), frame(b)]);
    const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=width,height', '-of', 'csv=p=0', a]);
    const [width, height] = stdout.trim().split(',').map(Number) as [number, number];
    let sum = 0;
    let count = 0;
    for (let row = Math.floor(band[0] * height); row < Math.floor(band[1] * height); row++) {
      for (let col = 0; col < width; col++, count++) sum += Math.abs(x[row * width + col]! - y[row * width + col]!);
    }
    return sum / count;
  }

  it('draws the words in the lower part of the picture while they are said', async () => {
    const render = (name: string, captions: CaptionWord[]) =>
      renderClip(settings, {
        source: path.join(dir, 'still.mp4'),
        startSeconds: 1,
        endSeconds: 6,
        aspect: '9:16',
        videoFile: path.join(dir, `${name}.mp4`),
        thumbnailFile: path.join(dir, `${name}.jpg`),
        captions,
      });
    const [plain, captioned] = await Promise.all([render('plain', []), render('captioned', WORDS)]);
    expect(captioned).toMatchObject({ width: plain.width, height: plain.height });
    const plainFile = path.join(dir, 'plain.mp4');
    const captionedFile = path.join(dir, 'captioned.mp4');
    // "Watch your disks." is on screen 1.0-2.7 s into the clip; nothing is said 2.8-3.4 s later.
    expect(await bandDifference(plainFile, captionedFile, 1.5, [0.55, 0.85])).toBeGreaterThan(3);
    expect(await bandDifference(plainFile, captionedFile, 1.5, [0, 0.4])).toBeLessThan(0.5);
    expect(await bandDifference(plainFile, captionedFile, 3.2, [0.55, 0.85])).toBeLessThan(0.5);
  });
});
