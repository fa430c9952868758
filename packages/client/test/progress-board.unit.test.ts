import { describeError } from '../src/cli/describe-error.js';
import { formatSeconds, printable, sourceLabel, truncate } from '../src/cli/format.js';
import { ClipLineApiError } from '../src/errors.js';
import { ProgressBoard } from '../src/cli/progress-board.js';
import { renderTable } from '../src/cli/text-table.js';
import type { Video, VideoStatus } from '../src/types.js';

const A = '11111111-1111-4111-8111-111111111111';
const B = '22222222-2222-4222-8222-222222222222';

function video(id: string, status: VideoStatus, progress: number, activeStep?: string): Video {
  return {
    id,
    status,
    progress,
    version: 1,
    priority: 'normal',
    options: {},
    callbackUrl: null,
    title: null,
    source: '/media/a.mp4',
    error: null,
    createdAt: '2025-01-01T00:00:00.000Z',
    updatedAt: '2025-01-01T00:00:00.000Z',
    completedAt: null,
    metadata: null,
    scenes: [],
    steps: ['ingest', 'analyze', 'persist'].map((name) => ({
      name,
      status: name === activeStep ? 'active' : 'pending',
      reason: null,
      attempts: 0,
      updatedAt: '',
    })),
    links: { self: `/v1/videos/${id}` },
  };
}

function sink(columns?: number, rows?: number) {
  const writes: string[] = [];
  return { writes, out: { write: (text: string) => writes.push(text), columns, rows }, text: () => writes.join('') };
}

// eslint-disable-next-line no-control-regex
const stripAnsi = (text: string) => text.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '');

/** The lines a terminal shows after `output`: cursor up, carriage return, line clear and newlines applied. */
function screenOf(output: string): string[] {
  const lines: string[] = [''];
  let row = 0;
  for (const token of output.match(/\u001b\[[0-9;?]*[A-Za-z]|\r|\n|[^\u001b\r\n]+/g) ?? []) {
    const up = /^\u001b\[(\d+)A$/.exec(token);
    if (up) row = Math.max(0, row - Number(up[1]));
    else if (token === '\u001b[2K' || token === '\r') lines[row] = token === '\r' ? (lines[row] ?? '') : '';
    else if (token === '\n') {
      row += 1;
      lines[row] ??= '';
    } else if (!token.startsWith('\u001b')) lines[row] = (lines[row] ?? '') + token;
  }
  return lines.filter((line, index) => line !== '' || index < lines.length - 1);
}

describe('ProgressBoard on a terminal', () => {
  it('draws one row per video, then redraws them in place with the cursor moved up', async () => {
    const { out, writes, text } = sink(100);
    const board = new ProgressBoard(
      out,
      [
        { id: A, label: 'talk.mp4' },
        { id: B, label: 'https://cdn.example.com/long-video.webm' },
      ],
      { live: true, color: false, redrawIntervalMs: 5 },
    );
    expect(writes[0]).toBe('\u001b[?25l');
    board.update(A, video(A, 'processing', 45, 'analyze'));
    await new Promise((resolve) => setTimeout(resolve, 30));
    const redraw = writes.at(-1)!;
    expect(redraw.startsWith('\u001b[2A')).toBe(true);
    const rows = stripAnsi(redraw).split('\n').filter(Boolean);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatch(/^\rtalk\.mp4 +\[█{9}░{11}\] {2}45% processing · analyze$/);
    expect(rows[1]).toMatch(/\[░{20}\] {3}0% queued$/);
    board.update(A, video(A, 'completed', 100));
    board.finish();
    expect(writes.at(-1)).toBe('\u001b[?25h');
    expect(stripAnsi(text())).toMatch(/\[█{20}\] 100% completed\n/);
  });

  it('coalesces a burst of updates into one redraw', async () => {
    const { out, writes } = sink(100);
    const board = new ProgressBoard(out, [{ id: A, label: 'a.mp4' }], { live: true, color: false, redrawIntervalMs: 20 });
    const before = writes.length;
    for (let progress = 1; progress <= 50; progress += 1) board.update(A, video(A, 'processing', progress));
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(writes.length - before).toBe(1);
    expect(stripAnsi(writes.at(-1)!)).toMatch(/ 50% processing/);
    board.finish();
  });

  it('keeps every row one column short of a narrow terminal, so lines never wrap, and still shows the status', () => {
    const { out, text } = sink(50);
    const board = new ProgressBoard(out, [{ id: A, label: 'a-very-long-file-name-that-goes-on-and-on.mp4' }], { live: true, color: true });
    board.fail(A, 'could not reach http://127.0.0.1:3000: ECONNREFUSED after several attempts');
    board.finish();
    const lines = stripAnsi(text())
      .split('\n')
      .map((line) => line.replace(/^\r/, ''))
      .filter(Boolean);
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(49);
    expect(text()).toContain('\u001b[31merror');
    expect(stripAnsi(text())).toContain('error · could not');
  });

  it('prints a notice above its rows, which it draws again below, leaving no stale row on the screen', () => {
    const { out, text } = sink(100);
    const board = new ProgressBoard(
      out,
      [
        { id: A, label: 'a.mp4' },
        { id: B, label: 'b.mp4' },
      ],
      { live: true, color: false },
    );
    board.write('clipline: 503 Service Unavailable; retrying in 1.0 s\n');
    board.update(A, video(A, 'processing', 50, 'analyze'));
    board.finish();
    expect(screenOf(text())).toEqual([
      'clipline: 503 Service Unavailable; retrying in 1.0 s',
      expect.stringMatching(/^a\.mp4 +\[█{10}░{10}\] {2}50% processing · analyze$/),
      expect.stringMatching(/^b\.mp4 +\[░{20}\] {3}0% queued$/),
    ]);
  });

  it('keeps within a terminal shorter than its rows: the ones under way first and a count of the rest, then every row once finished', () => {
    const { out, text, writes } = sink(100, 6);
    const ids = Array.from({ length: 10 }, (_, index) => `${String(index).padStart(8, '0')}-1111-4111-8111-111111111111`);
    const board = new ProgressBoard(
      out,
      ids.map((id, index) => ({ id, label: `v${index}.mp4` })),
      { live: true, color: false, redrawIntervalMs: 0 },
    );
    board.report(ids[0]!, { status: 'completed', progress: 100 });
    board.report(ids[1]!, { status: 'failed', progress: 40 });
    board.write('clipline: a notice\n');
    // Up to four lines drawn (three rows and the count), so the cursor never goes up more than that.
    const ups = writes.flatMap((write) => [...write.matchAll(/\u001b\[(\d+)A/g)].map((match) => Number(match[1])));
    expect(Math.max(...ups)).toBe(4);
    expect(screenOf(text()).slice(-4)).toEqual([
      expect.stringMatching(/^v2\.mp4 .* queued$/),
      expect.stringMatching(/^v3\.mp4 .* queued$/),
      expect.stringMatching(/^v4\.mp4 .* queued$/),
      '… and 7 more (1 completed, 1 failed, 5 queued)',
    ]);
    board.finish();
    const final = screenOf(text());
    expect(final.slice(-10).map((line) => line.split(' ')[0])).toEqual(ids.map((_, index) => `v${index}.mp4`));
  });

  it('shows text from the server on one line, its control characters and escapes made harmless', () => {
    const { out, text } = sink(100);
    const board = new ProgressBoard(out, [{ id: A, label: 'Part 1\nPart 2\u001b]0;owned\u0007' }], { live: true, color: false });
    board.fail(A, 'bad\r\u001b[2Jthing');
    board.finish();
    const screen = screenOf(text());
    expect(screen).toEqual([expect.stringMatching(/^Part 1 Part 2\ufffd]0;owned\ufffd +\[░{20}\] {3}0% error · bad \ufffd\[2Jthing$/)]);
    expect(printable('a\tb\u202ecba\u0085')).toBe('a b\ufffdcba\ufffd');
  });

  it('takes a terminal that reports 0 columns for one of unknown width (80)', () => {
    const { out, text } = sink(0);
    const board = new ProgressBoard(out, [{ id: A, label: 'a.mp4' }], { live: true, color: false });
    board.update(A, video(A, 'processing', 50, 'analyze'));
    board.finish();
    expect(stripAnsi(text())).toContain('a.mp4    [██████████░░░░░░░░░░]  50% processing · analyze');
  });
});

describe('ProgressBoard in a log', () => {
  it('prints a plain line per change of status, progress or step, and nothing for repeats', () => {
    const { out, text } = sink();
    const board = new ProgressBoard(out, [{ id: A, label: 'a.mp4' }], { live: false });
    board.update(A, video(A, 'processing', 10, 'ingest'));
    board.update(A, video(A, 'processing', 10, 'ingest'));
    board.update(A, video(A, 'processing', 60, 'analyze'));
    board.update(A, video(A, 'completed', 100));
    board.finish();
    expect(text()).toBe(
      [
        '[11111111] a.mp4 queued 0%',
        '[11111111] a.mp4 processing 10% (ingest)',
        '[11111111] a.mp4 processing 60% (analyze)',
        '[11111111] a.mp4 completed 100%',
        '',
      ].join('\n'),
    );
    expect(text()).not.toContain('\u001b');
  });

  it('names no step once the video has ended, even one whose record still says active', () => {
    const { out, text } = sink();
    const board = new ProgressBoard(out, [{ id: A, label: 'a.mp4' }], { live: false });
    board.update(A, video(A, 'failed', 0, 'ingest'));
    board.finish();
    expect(text()).toBe(['[11111111] a.mp4 queued 0%', '[11111111] a.mp4 failed 0%', ''].join('\n'));
  });
});

describe('text helpers', () => {
  it('describes an API error with the wait a 429 or 503 asked for, and in printable text', () => {
    const refusal = (status: number, title: string, detail: string, retryAfterMs?: number) =>
      new ClipLineApiError('GET', 'http://api.test/v1/videos', { type: 'about:blank', title, status, detail }, retryAfterMs);
    expect(describeError(refusal(429, 'Too Many Requests', 'slow down', 120_000))).toBe('slow down (429 Too Many Requests); the server asks to wait 120 s');
    expect(describeError(refusal(503, 'Service Unavailable', 'busy', 1500))).toBe('busy (503 Service Unavailable); the server asks to wait 2 s');
    expect(describeError(refusal(409, 'Conflict', 'still running', 1000))).toBe('still running (409 Conflict)');
    expect(describeError(refusal(404, 'Not Found', 'no video\u001b[31m'))).toBe('no video\ufffd[31m (404 Not Found)');
  });

  it('renders a table with columns padded to the widest cell and numbers right-aligned', () => {
    expect(
      renderTable(
        [{ header: 'ID' }, { header: 'SCENES', align: 'right' }],
        [
          ['abc', '7'],
          ['d', '12'],
        ],
      ),
    ).toBe('ID   SCENES\nabc       7\nd        12\n');
  });

  it('formats durations, labels and cuts', () => {
    expect([9.44, 65, 185.4, 3725].map(formatSeconds)).toEqual(['9.4s', '1m 05s', '3m 05s', '1h 02m']);
    expect(formatSeconds(Number.NaN)).toBe('-');
    expect(sourceLabel('/srv/media/talk.mp4')).toBe('talk.mp4');
    expect(sourceLabel('file:///srv/media/talk.mp4')).toBe('talk.mp4');
    expect(sourceLabel('https://cdn.example.com/v.mp4')).toBe('https://cdn.example.com/v.mp4');
    expect(truncate('abcdef', 4)).toBe('abc…');
    expect(truncate('abc', 4)).toBe('abc');
  });
});
