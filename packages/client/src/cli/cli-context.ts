import { createClient, type ClipLineClient } from '../client.js';
import type { CliSettings } from './cli-config.js';
import type { ProgressOutput } from './progress-board.js';

export interface CliStream extends ProgressOutput {
  isTTY?: boolean;
}

/** What a command may touch: its streams, the working directory and the settings. */
export interface CliContext {
  stdout: CliStream;
  stderr: CliStream;
  /** Relative file arguments are resolved against it. */
  cwd: string;
  /** Parsed on first use, so `--help` works whatever the environment holds. */
  settings(): CliSettings;
  /** Aborted on Ctrl-C. */
  signal: AbortSignal;
}

export const EXIT_OK = 0;
/** A video failed or was cancelled, or a request failed. */
export const EXIT_FAILURE = 1;
/** The command line (or the environment) is wrong. */
export const EXIT_USAGE = 2;
/** Interrupted by Ctrl-C, as shells report SIGINT. */
export const EXIT_INTERRUPTED = 130;

/**
 * Where lines about the requests go (a retry and why): stderr, or, while a progress board is
 * drawn there, the board, which prints them above its rows instead of drawing over them.
 */
export class NoticeOutput {
  private board: { write(text: string): unknown } | undefined;

  constructor(private readonly stderr: CliStream) {}

  /** Lines go through `board` until it is taken away (undefined). */
  through(board: { write(text: string): unknown } | undefined): void {
    this.board = board;
  }

  write(text: string): void {
    (this.board ?? this.stderr).write(text);
  }
}

/** How long a retry's reason is not repeated: fifty videos followed through one outage say it once. */
const NOTICE_REPEAT_MS = 10_000;

/**
 * A client for the API in the settings; retries are announced on `notices` so a pause is
 * explained, each reason once in {@link NOTICE_REPEAT_MS} however many requests meet it.
 */
export function apiClient(context: CliContext, notices: { write(text: string): unknown } = context.stderr): ClipLineClient {
  const settings = context.settings();
  const lastSaid = new Map<string, number>();
  return createClient({
    baseUrl: settings.apiUrl,
    apiKey: settings.apiKey,
    onRetry: (notice) => {
      const now = Date.now();
      if (now - (lastSaid.get(notice.reason) ?? Number.NEGATIVE_INFINITY) < NOTICE_REPEAT_MS) return;
      lastSaid.set(notice.reason, now);
      notices.write(`clipline: ${notice.reason}; retrying in ${(notice.delayMs / 1000).toFixed(1)} s\n`);
    },
  });
}
