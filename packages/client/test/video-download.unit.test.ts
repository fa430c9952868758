import { ProgressBoard } from '../src/cli/progress-board.js';
import { DOWNLOAD_WAITING } from '../src/cli/download-command.js';
import { describeSaved, notDownloadableReason, showDownloadOn, showSavedOn, type VideoDownloadProgress } from '../src/cli/video-download.js';
import type { Video, VideoStatus } from '../src/types.js';

const A = '11111111-1111-4111-8111-111111111111';

function video(status: VideoStatus, progress: number, error: string | null = null): Video {
  return {
    id: A,
    status,
    progress,
    version: 1,
    priority: 'normal',
    options: {},
    callbackUrl: null,
    title: null,
    source: '/media/a.mp4',
    error,
    createdAt: '2025-01-01T00:00:00.000Z',
    updatedAt: '2025-01-01T00:00:00.000Z',
    completedAt: null,
    metadata: null,
    scenes: [],
    steps: [],
    links: { self: `/v1/videos/${A}` },
  };
}

function sink() {
  const writes: string[] = [];
  return { out: { write: (text: string) => writes.push(text), columns: 100 }, text: () => writes.join('') };
}

// eslint-disable-next-line no-control-regex
const stripAnsi = (text: string) => text.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '');

/** Two files of 2000 and 1000 bytes, arriving in 1000-byte chunks, as downloadVideoResults reports them. */
function twoFiles(): VideoDownloadProgress[] {
  const base = { fileCount: 2 };
  return [
    { ...base, file: 'clip-0.mp4', filesDone: 0, fileBytes: 1000, fileTotalBytes: 2000, videoBytes: 1000, fileFinished: false },
    { ...base, file: 'clip-0.mp4', filesDone: 0, fileBytes: 2000, fileTotalBytes: 2000, videoBytes: 2000, fileFinished: false },
    { ...base, file: 'clip-0.mp4', filesDone: 0, fileBytes: 2000, fileTotalBytes: 2000, videoBytes: 2000, fileFinished: true },
    { ...base, file: 'clip-0-thumbnail.jpg', filesDone: 1, fileBytes: 1000, fileTotalBytes: 1000, videoBytes: 3000, fileFinished: false },
    { ...base, file: 'clip-0-thumbnail.jpg', filesDone: 1, fileBytes: 1000, fileTotalBytes: 1000, videoBytes: 3000, fileFinished: true },
  ];
}

describe('download progress on the board', () => {
  it('prints a line per finished file in a log, never one per chunk, then the saved state', () => {
    const { out, text } = sink();
    const board = new ProgressBoard(out, [{ id: A, label: 'a.mp4' }], { live: false, initialStatus: DOWNLOAD_WAITING });
    const show = showDownloadOn(board, A, false);
    for (const progress of twoFiles()) show(progress);
    showSavedOn(board, A, {
      id: A,
      folder: '/out/a',
      files: [
        { path: '/out/a/clip-0.mp4', bytes: 2000 },
        { path: '/out/a/clip-0-thumbnail.jpg', bytes: 1000 },
      ],
      bytes: 3000,
      unrenderedClips: 0,
    });
    board.finish();
    expect(text()).toBe(
      [
        '[11111111] a.mp4 waiting 0%',
        '[11111111] a.mp4 downloading 50% (clip-0.mp4 2.0 KB)',
        '[11111111] a.mp4 downloading 100% (clip-0-thumbnail.jpg 1.0 KB)',
        '[11111111] a.mp4 downloaded 100% (2 files, 3.0 KB)',
        '',
      ].join('\n'),
    );
  });

  it('shows the bytes of the current file on a terminal, and the share of the files done', async () => {
    const { out, text } = sink();
    const board = new ProgressBoard(out, [{ id: A, label: 'a.mp4' }], { live: true, color: false, redrawIntervalMs: 1 });
    showDownloadOn(board, A, true)(twoFiles()[0]!);
    await new Promise((resolve) => setTimeout(resolve, 20));
    board.finish();
    // Half of the first of two files: a quarter of the video.
    expect(stripAnsi(text())).toContain(' 25% downloading · clip-0.mp4 1.0 KB of 2.0 KB');
  });
});

describe('what can be downloaded', () => {
  it('only a completed video; the others are refused with their state', () => {
    expect(notDownloadableReason(video('completed', 100))).toBeNull();
    expect(notDownloadableReason(video('processing', 40))).toBe(
      `video ${A} is processing (40%), not completed: download it once it completes (follow it with "clipline status ${A}")`,
    );
    expect(notDownloadableReason(video('failed', 30, 'ingest: not a video'))).toBe(`video ${A} failed (ingest: not a video): it has no results to download`);
    expect(notDownloadableReason(video('cancelled', 0))).toBe(`video ${A} was cancelled: it has no results to download`);
  });

  it('describes what was saved, and the clips that were not rendered', () => {
    const saved = { id: A, folder: '/out', files: [{ path: '/out/clip-0.mp4', bytes: 1500 }], bytes: 1500, unrenderedClips: 0 };
    expect(describeSaved(saved)).toBe('1 file, 1.5 KB');
    expect(describeSaved({ ...saved, unrenderedClips: 2 })).toBe('1 file, 1.5 KB (2 clips not rendered: see video.json)');
  });
});
