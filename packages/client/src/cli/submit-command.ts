import type { ClipLineClient } from '../client.js';
import { TERMINAL_VIDEO_STATUSES, type ClipAspect, type Video, type VideoOptions, type VideoPriority, type VideoSubmission } from '../types.js';
import { choiceOption, integerOption, parseArgs } from './args.js';
import { apiClient, EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, NoticeOutput, type CliContext } from './cli-context.js';
import { describeError } from './describe-error.js';
import { formatSeconds, sourceLabel, truncate } from './format.js';
import { helpText } from './help.js';
import { mapConcurrently } from './map-concurrently.js';
import { resolveOutputDir } from './output-dir.js';
import { ProgressBoard } from './progress-board.js';
import { resolveSource } from './resolve-source.js';
import { renderTable } from './text-table.js';
import { UsageError } from './usage-error.js';
import { describeSaved, downloadVideoResults, showDownloadOn, showSavedOn, type SavedVideo } from './video-download.js';

const SPEC = {
  wait: { type: 'boolean' },
  download: { type: 'string' },
  title: { type: 'string' },
  aspect: { type: 'string' },
  clips: { type: 'string' },
  priority: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/**
 * Requests in flight while submitting, and event streams open while waiting: a share of the
 * streams a key may hold (SSE_MAX_STREAMS_PER_KEY, 50 by default), so a second client with the
 * same key still gets its own.
 */
const SUBMIT_CONCURRENCY = 8;
const FOLLOW_CONCURRENCY = 20;

interface Outcome {
  source: string;
  id: string | null;
  submittedAt: number;
  /** Why the video could not be submitted or followed. */
  error: string | null;
  video: Video | null;
  finishedAt: number | null;
  /** With --download: where the results went, or why they could not be saved. */
  saved: SavedVideo | null;
  downloadError: string | null;
}

function submissionFrom(source: string, options: { title?: string; aspect?: ClipAspect; clipCount?: number; priority?: VideoPriority }): VideoSubmission {
  const videoOptions: VideoOptions = {};
  if (options.aspect) videoOptions.aspect = options.aspect;
  if (options.clipCount !== undefined) videoOptions.clipCount = options.clipCount;
  return {
    source,
    ...(options.title !== undefined ? { title: options.title } : {}),
    ...(Object.keys(videoOptions).length ? { options: videoOptions } : {}),
    ...(options.priority ? { priority: options.priority } : {}),
  };
}

/** `clipline submit <files|urls…> [--wait] …` */
export async function submitCommand(argv: readonly string[], context: CliContext): Promise<number> {
  const { options, positionals } = parseArgs(argv, SPEC, 'submit');
  if (options.help) {
    context.stdout.write(helpText('submit'));
    return EXIT_OK;
  }
  if (positionals.length === 0) throw new UsageError('submit needs at least one file or URL', 'submit');
  const shape = {
    ...(options.title !== undefined ? { title: options.title } : {}),
    aspect: choiceOption('aspect', options.aspect, ['9:16', '1:1', '16:9'] as const, 'submit'),
    clipCount: integerOption('clips', options.clips, 1, 20, 'submit'),
    priority: choiceOption('priority', options.priority, ['high', 'normal', 'low'] as const, 'submit'),
  };
  if (options.download !== undefined && !options.wait) {
    throw new UsageError('--download needs --wait: results exist only once a video completes', 'submit');
  }
  const downloadDir = options.download === undefined ? undefined : await resolveOutputDir(options.download, context.cwd, 'download', 'submit');
  const sources = await Promise.all(positionals.map((argument) => resolveSource(argument, context.cwd)));
  const notices = new NoticeOutput(context.stderr);
  const client = apiClient(context, notices);

  const outcomes = await mapConcurrently(sources, SUBMIT_CONCURRENCY, async (source): Promise<Outcome> => {
    const submittedAt = Date.now();
    const outcome: Outcome = { source, id: null, submittedAt, error: null, video: null, finishedAt: null, saved: null, downloadError: null };
    try {
      outcome.id = (await client.submitVideo(submissionFrom(source, shape), { signal: context.signal })).id;
    } catch (error) {
      // Ctrl-C: the submissions already accepted are still reported below, so they can be followed or cancelled.
      outcome.error = context.signal.aborted ? 'interrupted' : describeError(error);
      if (!context.signal.aborted) context.stderr.write(`clipline: could not submit ${source}: ${outcome.error}\n`);
    }
    return outcome;
  });
  if (context.signal.aborted) return reportInterruptedSubmissions(outcomes, context, options.json === true);

  if (!options.wait) {
    printSubmissions(outcomes, context, options.json === true);
    return outcomes.every((outcome) => outcome.id) ? EXIT_OK : EXIT_FAILURE;
  }

  await waitForAll(client, outcomes, context, { downloadDir, notices });
  if (options.json) context.stdout.write(`${JSON.stringify(outcomes.map(jsonSummary), null, 2)}\n`);
  else context.stdout.write(summaryTable(outcomes));
  if (context.signal.aborted) return EXIT_INTERRUPTED;
  const succeeded = (outcome: Outcome) =>
    outcome.video?.status === 'completed' && outcome.error === null && (downloadDir === undefined || outcome.saved !== null);
  return outcomes.every(succeeded) ? EXIT_OK : EXIT_FAILURE;
}

/** The submissions without following them: each accepted one's id and source (JSON: every one, with its error). */
function printSubmissions(outcomes: readonly Outcome[], context: CliContext, json: boolean): void {
  if (json) {
    const listed = outcomes.map(({ source, id, error }) => (id ? { source, id, status: 'queued' } : { source, error }));
    context.stdout.write(`${JSON.stringify(listed, null, 2)}\n`);
    return;
  }
  for (const outcome of outcomes) if (outcome.id) context.stdout.write(`${outcome.id}  ${outcome.source}\n`);
}

/**
 * Ctrl-C while submitting: the videos already accepted are queued and will run, so their ids are
 * printed (as without --wait) for `clipline status` or a cancel; the others are named as not
 * submitted (one interrupted mid-request may or may not have reached the server).
 */
function reportInterruptedSubmissions(outcomes: readonly Outcome[], context: CliContext, json: boolean): number {
  const accepted = outcomes.filter((outcome) => outcome.id !== null);
  printSubmissions(outcomes, context, json);
  context.stderr.write(
    `clipline: interrupted: ${accepted.length} of ${outcomes.length} submitted (queued and running; ids above); the others were not, or may not have been, accepted\n`,
  );
  return EXIT_INTERRUPTED;
}

/**
 * Follows every submitted video on one board; Ctrl-C stops following, the summary still prints.
 * With `downloadDir`, a video's results are saved as soon as it completes, while the others are
 * still followed.
 */
async function waitForAll(
  client: ClipLineClient,
  outcomes: Outcome[],
  context: CliContext,
  { downloadDir, notices }: { downloadDir: string | undefined; notices: NoticeOutput },
): Promise<void> {
  const followed = outcomes.filter((outcome): outcome is Outcome & { id: string } => outcome.id !== null);
  const live = context.stderr.isTTY === true;
  const board = new ProgressBoard(
    context.stderr,
    followed.map((outcome) => ({ id: outcome.id, label: sourceLabel(outcome.source) })),
    { live, color: context.settings().color },
  );
  notices.through(board);
  try {
    await mapConcurrently(followed, FOLLOW_CONCURRENCY, async (outcome) => {
      try {
        for await (const { video } of client.watchVideo(outcome.id, { signal: context.signal })) {
          outcome.video = video;
          board.update(outcome.id, video);
          if (TERMINAL_VIDEO_STATUSES.includes(video.status)) outcome.finishedAt = Date.now();
        }
        // Events carry the video's state; clips and transcript come with the full read.
        if (outcome.finishedAt !== null) outcome.video = await client.getVideo(outcome.id, { signal: context.signal });
      } catch (error) {
        outcome.error = context.signal.aborted ? 'interrupted' : describeError(error);
        board.fail(outcome.id, outcome.error);
        return;
      }
      if (downloadDir === undefined || outcome.video?.status !== 'completed') return;
      try {
        outcome.saved = await downloadVideoResults(client, outcome.video, downloadDir, {
          signal: context.signal,
          onProgress: showDownloadOn(board, outcome.id, live),
        });
        showSavedOn(board, outcome.id, outcome.saved);
      } catch (error) {
        outcome.downloadError = context.signal.aborted ? 'interrupted' : describeError(error);
        board.fail(outcome.id, `download: ${outcome.downloadError}`);
      }
    });
  } finally {
    board.finish();
    notices.through(undefined);
  }
}

function elapsedSeconds(outcome: Outcome): number | null {
  return outcome.finishedAt === null ? null : (outcome.finishedAt - outcome.submittedAt) / 1000;
}

function jsonSummary(outcome: Outcome) {
  return {
    source: outcome.source,
    id: outcome.id,
    status: outcome.video?.status ?? (outcome.id ? 'unknown' : 'rejected'),
    error: outcome.error ?? outcome.video?.error ?? null,
    elapsedSeconds: elapsedSeconds(outcome),
    ...(outcome.saved ? { download: { folder: outcome.saved.folder, files: outcome.saved.files, bytes: outcome.saved.bytes } } : {}),
    ...(outcome.downloadError ? { downloadError: outcome.downloadError } : {}),
    video: outcome.video,
  };
}

function summaryTable(outcomes: readonly Outcome[]): string {
  const rows = outcomes.map((outcome) => {
    const video = outcome.video;
    const elapsed = elapsedSeconds(outcome);
    return [
      outcome.id ?? '-',
      truncate(sourceLabel(outcome.source), 40),
      video?.status ?? (outcome.id ? 'unknown' : 'rejected'),
      video?.metadata ? formatSeconds(video.metadata.durationSeconds) : '-',
      video ? String(video.scenes.length) : '-',
      video?.clips ? String(video.clips.length) : '-',
      elapsed === null ? '-' : formatSeconds(elapsed),
    ];
  });
  const table = renderTable(
    [
      { header: 'ID' },
      { header: 'SOURCE' },
      { header: 'STATUS' },
      { header: 'DURATION', align: 'right' },
      { header: 'SCENES', align: 'right' },
      { header: 'CLIPS', align: 'right' },
      { header: 'ELAPSED', align: 'right' },
    ],
    rows,
  );
  const saved = outcomes.flatMap((outcome) => (outcome.saved ? [`${outcome.id}: saved ${describeSaved(outcome.saved)} to ${outcome.saved.folder}`] : []));
  const problems = outcomes.flatMap((outcome) => {
    const name = outcome.id ?? sourceLabel(outcome.source);
    if (outcome.video?.status !== 'completed') return [`${name}: ${outcome.error ?? outcome.video?.error ?? outcome.video?.status ?? 'unknown'}`];
    // Completed, but its final read (clips, transcript) failed: what is shown is the event's state alone.
    if (outcome.error) return [`${name}: completed, but reading its results failed: ${outcome.error}`];
    return outcome.downloadError ? [`${name}: download failed: ${outcome.downloadError}`] : [];
  });
  const notes = [...saved, ...problems];
  return notes.length ? `${table}\n${notes.join('\n')}\n` : table;
}
