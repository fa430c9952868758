import { TERMINAL_VIDEO_STATUSES, type Video } from '../types.js';
import { printable, truncate } from './format.js';

/** Where the board draws: a terminal (with `columns`) or any text sink. */
export interface ProgressOutput {
  write(text: string): unknown;
  columns?: number;
  /** The terminal's height: a live board keeps within it (the cursor cannot go up past the top). */
  rows?: number;
}

export interface ProgressBoardOptions {
  /** Redraw the rows in place with ANSI escapes (a terminal); otherwise print a line per change. */
  live: boolean;
  /** Colour the status words (live mode only). @defaultValue true */
  color?: boolean;
  /** Fewest milliseconds between two redraws. @defaultValue 100 */
  redrawIntervalMs?: number;
  /** Every row's status word until its first report (a download's rows are no queued videos). @defaultValue 'queued' */
  initialStatus?: string;
}

interface Row {
  id: string;
  label: string;
  status: string;
  progress: number;
  step: string;
  /** The last plain line printed for this row, so unchanged states are not repeated. */
  printed: string;
}

const MAX_BAR_CELLS = 20;
const MIN_BAR_CELLS = 5;
/** Room kept for "processing · analyze" before the bar takes its full width. */
const STATUS_ROOM = 24;
const ESC = '\u001b[';
/** Row states that will not change again: a board too tall for the terminal shows the others first. */
const ENDED = new Set(['completed', 'downloaded', 'failed', 'cancelled', 'error']);
const COLOURS: Record<string, string> = { completed: '32', downloaded: '32', failed: '31', error: '31', cancelled: '33', processing: '36', downloading: '36' };

function activeStep(video: Video): string {
  // A video that has ended runs no step, whatever a step's own record has not caught up with yet.
  if (TERMINAL_VIDEO_STATUSES.includes(video.status)) return '';
  return video.steps.find((step) => step.status === 'active')?.name ?? '';
}

/**
 * One row per video with its progress. On a terminal the rows are redrawn in place (at most
 * every `redrawIntervalMs`, so a burst of events costs one redraw); elsewhere each change of
 * status, progress or step is printed as a line of its own, which reads well in CI logs.
 */
export class ProgressBoard {
  private readonly rows = new Map<string, Row>();
  private readonly live: boolean;
  private readonly color: boolean;
  private readonly redrawIntervalMs: number;
  private drawnLines = 0;
  private redrawTimer: NodeJS.Timeout | undefined;
  private finished = false;

  constructor(
    private readonly out: ProgressOutput,
    videos: readonly { id: string; label: string }[],
    options: ProgressBoardOptions,
  ) {
    const status = options.initialStatus ?? 'queued';
    for (const video of videos) this.rows.set(video.id, { id: video.id, label: printable(video.label), status, progress: 0, step: '', printed: '' });
    this.live = options.live;
    this.color = options.live && (options.color ?? true);
    this.redrawIntervalMs = options.redrawIntervalMs ?? 100;
    if (this.live) {
      this.out.write(`${ESC}?25l`);
      this.draw();
    } else {
      for (const row of this.rows.values()) this.printLine(row);
    }
  }

  update(id: string, video: Video): void {
    this.change(id, { status: video.status, progress: video.progress, step: activeStep(video) });
  }

  /** A state that is not the video's own, e.g. its download: a status word, a percentage and what is going on. */
  report(id: string, state: { status: string; progress: number; detail?: string }): void {
    this.change(id, { status: state.status, progress: Math.round(state.progress), step: state.detail ?? '' });
  }

  /** The video could not be followed (or submitted): the row shows the reason. */
  fail(id: string, reason: string): void {
    this.change(id, { status: 'error', step: reason });
  }

  /** Prints lines of text (ending in a newline) above the rows, which are drawn again below them. */
  write(text: string): void {
    if (!this.live || this.finished || this.drawnLines === 0) {
      this.out.write(text);
      return;
    }
    let lines = `${ESC}${this.drawnLines}A`;
    for (const line of text.replace(/\n$/, '').split('\n')) lines += `\r${ESC}2K${line}\n`;
    this.out.write(lines);
    this.drawnLines = 0;
    this.draw();
  }

  /** Draws the final state and gives the cursor back; safe to call twice. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.redrawTimer);
    if (this.live) {
      this.draw();
      this.out.write(`${ESC}?25h`);
    }
  }

  private change(id: string, fields: Partial<Pick<Row, 'status' | 'progress' | 'step'>>): void {
    const row = this.rows.get(id);
    if (!row || this.finished) return;
    Object.assign(row, fields.step === undefined ? fields : { ...fields, step: printable(fields.step) });
    if (!this.live) {
      this.printLine(row);
      return;
    }
    this.redrawTimer ??= setTimeout(() => {
      this.redrawTimer = undefined;
      this.draw();
    }, this.redrawIntervalMs);
  }

  private printLine(row: Row): void {
    const line = `[${row.id.slice(0, 8)}] ${row.label} ${row.status} ${row.progress}%${row.step ? ` (${row.step})` : ''}`;
    if (line === row.printed) return;
    row.printed = line;
    this.out.write(`${line}\n`);
  }

  private draw(): void {
    // A pseudo-terminal may report 0 columns: that means unknown, not narrow.
    const columns = Math.max(40, this.out.columns || 80);
    const rows = [...this.rows.values()];
    const labelWidth = Math.min(Math.max(8, ...rows.map((row) => row.label.length)), Math.max(8, columns - 60));
    const barCells = Math.max(MIN_BAR_CELLS, Math.min(MAX_BAR_CELLS, columns - labelWidth - 8 - STATUS_ROOM));
    const { shown, more } = this.visibleRows(rows);
    let text = this.drawnLines > 0 ? `${ESC}${this.drawnLines}A` : '';
    for (const row of shown) text += `\r${ESC}2K${this.renderRow(row, { labelWidth, barCells, columns })}\n`;
    if (more) text += `\r${ESC}2K${truncate(more, columns - 1)}\n`;
    this.drawnLines = shown.length + (more ? 1 : 0);
    this.out.write(text);
  }

  /**
   * The rows that fit the terminal's height, one line kept for the cursor and one for a count of
   * the others: those still under way first, in their order. Once finished every row is drawn
   * (nothing is redrawn after it, so rows that scroll off the top are no harm).
   */
  private visibleRows(rows: Row[]): { shown: Row[]; more: string } {
    const room = this.out.rows ? Math.max(2, this.out.rows - 2) : Number.POSITIVE_INFINITY;
    if (this.finished || rows.length <= room) return { shown: rows, more: '' };
    const keep = new Set([...rows.filter((row) => !ENDED.has(row.status)), ...rows.filter((row) => ENDED.has(row.status))].slice(0, room - 1));
    const hidden = rows.filter((row) => !keep.has(row));
    const byStatus = new Map<string, number>();
    for (const row of hidden) byStatus.set(row.status, (byStatus.get(row.status) ?? 0) + 1);
    const counts = [...byStatus].map(([status, count]) => `${count} ${status}`).join(', ');
    return { shown: rows.filter((row) => keep.has(row)), more: `… and ${hidden.length} more (${counts})` };
  }

  /** Kept one column short of the terminal: a wrapped line would break the cursor arithmetic. */
  private renderRow(row: Row, { labelWidth, barCells, columns }: { labelWidth: number; barCells: number; columns: number }): string {
    const filled = Math.round((Math.max(0, Math.min(100, row.progress)) / 100) * barCells);
    const bar = `[${'█'.repeat(filled)}${'░'.repeat(barCells - filled)}]`;
    const head = `${truncate(row.label, labelWidth).padEnd(labelWidth)} ${bar} ${`${row.progress}%`.padStart(4)} `;
    const tail = truncate(`${row.status}${row.step ? ` · ${row.step}` : ''}`, columns - 1 - head.length);
    const colour = COLOURS[row.status];
    if (!this.color || !colour) return head + tail;
    const statusEnd = Math.min(tail.length, row.status.length);
    return `${head}${ESC}${colour}m${tail.slice(0, statusEnd)}${ESC}0m${tail.slice(statusEnd)}`;
  }
}
