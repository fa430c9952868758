import { writeSync } from 'node:fs';

/** How long a full descriptor is waited for between two tries, and how long in all before lines are dropped. */
const BUSY_WAIT_MS = 5;
const BUSY_GIVE_UP_MS = 10_000;

const pause = new Int32Array(new SharedArrayBuffer(4));

/** Pending characters that make the writer write at once. */
const MAX_PENDING = 16_384;
const STDOUT = 1;

/**
 * A log destination that writes lines to stdout in batches: at most `maxDelayMs` after the first
 * pending line, at once past {@link MAX_PENDING} characters, and synchronously when the process exits (also on
 * `process.exit()` and after an uncaught exception). One write call carries many lines, where a
 * synchronous destination makes one call a line: on a worker running thousands of jobs a second
 * that call was a tenth of the runtime's cost. A process killed with SIGKILL loses the lines of
 * its last `maxDelayMs`.
 */
export class BatchedLineWriter {
  private pending: string[] = [];
  private pendingLength = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly flushNow = () => this.flushSync();

  /** `maxDelayMs`: longest a line waits before it is written. */
  constructor(private readonly maxDelayMs: number) {
    process.on('exit', this.flushNow);
  }

  /** pino's destination interface: one serialised line, newline included. */
  write(line: string): boolean {
    this.pending.push(line);
    this.pendingLength += line.length;
    if (this.pendingLength >= MAX_PENDING) this.flushSync();
    else if (!this.timer) this.timer = setTimeout(this.flushNow, this.maxDelayMs).unref();
    return true;
  }

  /** Writes every pending line now (pino's `logger.flush()` calls it too). */
  flushSync(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.pending.length === 0) return;
    const text = this.pending.length === 1 ? this.pending[0] : this.pending.join('');
    this.pending = [];
    this.pendingLength = 0;
    writeFully(STDOUT, Buffer.from(text as string));
  }
}

/**
 * Writes all of `bytes`, going on after a partial write; a descriptor that is full for now (a
 * non-blocking pipe nobody reads fast enough) is waited for, a few ms at a time, for up to 10 s.
 * Lines that cannot be written are dropped: logging never takes a process down.
 */
function writeFully(fd: number, bytes: Buffer): void {
  let offset = 0;
  let busySince: number | undefined;
  while (offset < bytes.length) {
    try {
      offset += writeSync(fd, bytes, offset, bytes.length - offset);
      busySince = undefined;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'EAGAIN' && code !== 'EBUSY') return;
      busySince ??= Date.now();
      if (Date.now() - busySince > BUSY_GIVE_UP_MS) return;
      Atomics.wait(pause, 0, 0, BUSY_WAIT_MS);
    }
  }
}
