import type { Video } from '../types.js';
import { parseArgs } from './args.js';
import { apiClient, EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, NoticeOutput, type CliContext } from './cli-context.js';
import { describeError } from './describe-error.js';
import { sourceLabel } from './format.js';
import { helpText } from './help.js';
import { mapConcurrently } from './map-concurrently.js';
import { resolveOutputDir } from './output-dir.js';
import { ProgressBoard } from './progress-board.js';
import { UsageError } from './usage-error.js';
import {
  describeSaved,
  describeVideoReadFailure,
  downloadVideoResults,
  notDownloadableReason,
  showDownloadOn,
  showSavedOn,
  type SavedVideo,
} from './video-download.js';

const SPEC = { out: { type: 'string', short: 'o' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } as const;

/** Videos read, and then downloaded, at the same time; each video's files come one after the other. */
const READ_CONCURRENCY = 8;
const DOWNLOAD_CONCURRENCY = 3;
/** A row's state until its download starts: the video itself is completed, not queued. */
export const DOWNLOAD_WAITING = 'waiting';

interface DownloadOutcome {
  id: string;
  video: Video | null;
  saved: SavedVideo | null;
  error: string | null;
}

/** `clipline download <id…> [--out DIR] [--json]` */
export async function downloadCommand(argv: readonly string[], context: CliContext): Promise<number> {
  const { options, positionals } = parseArgs(argv, SPEC, 'download');
  if (options.help) {
    context.stdout.write(helpText('download'));
    return EXIT_OK;
  }
  if (positionals.length === 0) throw new UsageError('download needs at least one video id', 'download');
  // An empty id would read `/v1/videos/`, the list, as if it were a video.
  if (positionals.some((id) => id.trim() === '')) throw new UsageError('a video id must not be empty', 'download');
  const dotted = positionals.find((id) => id.trim() === '.' || id.trim() === '..');
  if (dotted !== undefined) throw new UsageError(`not a video id: ${JSON.stringify(dotted)}`, 'download');
  const outDir = await resolveOutputDir(options.out ?? '.', context.cwd, 'out', 'download');
  // The same id twice would race two downloads into one folder.
  const ids = [...new Set(positionals.map((id) => id.trim().toLowerCase()))];
  const notices = new NoticeOutput(context.stderr);
  const client = apiClient(context, notices);

  // Every video is read first, so refusals are said before the board starts drawing.
  const outcomes = await mapConcurrently(ids, READ_CONCURRENCY, async (id): Promise<DownloadOutcome> => {
    const outcome: DownloadOutcome = { id, video: null, saved: null, error: null };
    try {
      outcome.video = await client.getVideo(id, { signal: context.signal });
      outcome.error = notDownloadableReason(outcome.video);
    } catch (error) {
      if (context.signal.aborted) throw error;
      outcome.error = describeVideoReadFailure(id, error);
    }
    if (outcome.error) context.stderr.write(`clipline: ${outcome.error}\n`);
    return outcome;
  });

  const ready = outcomes.filter((outcome): outcome is DownloadOutcome & { video: Video } => outcome.video !== null && outcome.error === null);
  const live = context.stderr.isTTY === true;
  const board = new ProgressBoard(
    context.stderr,
    ready.map(({ id, video }) => ({ id, label: video.title ?? sourceLabel(video.source) })),
    { live, color: context.settings().color, initialStatus: DOWNLOAD_WAITING },
  );
  notices.through(board);
  try {
    await mapConcurrently(ready, DOWNLOAD_CONCURRENCY, async (outcome) => {
      try {
        outcome.saved = await downloadVideoResults(client, outcome.video, outDir, {
          signal: context.signal,
          onProgress: showDownloadOn(board, outcome.id, live),
        });
        showSavedOn(board, outcome.id, outcome.saved);
      } catch (error) {
        outcome.error = context.signal.aborted ? 'interrupted' : describeError(error);
        board.fail(outcome.id, outcome.error);
      }
    });
  } finally {
    board.finish();
    notices.through(undefined);
  }

  if (options.json) {
    const report = outcomes.map(({ id, saved, error }) =>
      saved ? { id, folder: saved.folder, files: saved.files, bytes: saved.bytes, unchangedFiles: saved.unchangedFiles } : { id, error },
    );
    context.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } else {
    for (const { id, saved, error } of outcomes) {
      if (saved) context.stdout.write(`${id}  ${saved.folder}  ${describeSaved(saved)}\n`);
      else if (error && ready.some((outcome) => outcome.id === id)) context.stderr.write(`clipline: ${id}: ${error}\n`);
    }
  }
  if (context.signal.aborted) return EXIT_INTERRUPTED;
  return outcomes.every((outcome) => outcome.saved) ? EXIT_OK : EXIT_FAILURE;
}
