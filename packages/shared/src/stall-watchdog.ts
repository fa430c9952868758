import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';

/** Milliseconds an ffmpeg run may go without progress before it is stopped. */
export const DEFAULT_STALL_TIMEOUT_MS = 60_000;

/** Clock ticks a second in `/proc/<pid>/stat` (USER_HZ), 100 on Linux. */
const TICKS_PER_SECOND = 100;
/**
 * Share of one core ffmpeg must have used since its last progress for its work to count as
 * progress: a run niced below busy neighbours still gets several times this, a run that only
 * wakes to report (twice a second) far less.
 */
const BUSY_SHARE = 0.05;
/** And at least this many ticks (20 ms), so that one tick of rounding is never progress. */
const MIN_BUSY_TICKS = 2;
/** How long its CPU alone may stretch a wait for ffmpeg's output (at least ten timeouts). */
const BUSY_LIMIT_MS = 10 * 60_000;

/**
 * Fires once when ffmpeg has been waited on longer than the timeout without progress. Only
 * waiting counts: while a consumer holds what ffmpeg gave (a batch of frames), ffmpeg is
 * blocked on its pipe by design, and the caller says so with {@link busy}. With `cpuTicks`
 * (the CPU time ffmpeg has used), a run that works hard without output yet (decoding from the
 * keyframe before a seek's target, long in a source with rare keyframes) is not taken for
 * stalled: a stall is no output and next to no CPU (under a twentieth of a core), as of a source on
 * a hung mount or pipe. Its CPU stretches a wait for output to `busyLimitMs` at most (ten
 * minutes, or ten timeouts if longer), so a run busy in a loop that never outputs is stopped too.
 */
export class StallWatchdog {
  fired = false;
  /** The limit that was passed when it fired: the timeout, or `busyLimitMs` for a busy run without output. */
  limitMs: number;
  private waitingSince: number | null = null;
  private workingAt = 0;
  /** The CPU time and the instant its use is measured from: the last time it counted as progress. */
  private reference: { ticks: number; at: number } | undefined;
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly timeoutMs: number,
    onStall: () => void,
    private readonly cpuTicks?: () => number | undefined,
    busyLimitMs = Math.max(BUSY_LIMIT_MS, timeoutMs * 10),
  ) {
    this.limitMs = timeoutMs;
    this.timer = setInterval(
      () => {
        if (this.waitingSince === null || this.fired) return;
        const now = Date.now();
        if (this.working(now)) this.workingAt = now;
        const quietMs = now - Math.max(this.waitingSince, this.workingAt);
        const outputlessMs = now - this.waitingSince;
        if (quietMs <= timeoutMs && outputlessMs <= busyLimitMs) return;
        this.limitMs = quietMs > timeoutMs ? timeoutMs : busyLimitMs;
        this.fired = true;
        onStall();
      },
      Math.max(50, Math.min(1000, timeoutMs / 4)),
    );
    this.timer.unref();
  }

  /** Whether ffmpeg used at least {@link BUSY_SHARE} of a core since it last counted as working. */
  private working(now: number): boolean {
    const ticks = this.cpuTicks?.();
    if (ticks === undefined) return false;
    const reference = this.reference;
    if (!reference) {
      this.reference = { ticks, at: now };
      return false;
    }
    const used = ticks - reference.ticks;
    if (used < MIN_BUSY_TICKS || used / TICKS_PER_SECOND < (BUSY_SHARE * (now - reference.at)) / 1000) return false;
    this.reference = { ticks, at: now };
    return true;
  }

  /** Waiting on ffmpeg from now on (also: it made progress, the wait starts again). */
  waiting(): void {
    this.waitingSince = Date.now();
  }

  busy(): void {
    this.waitingSince = null;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** User plus system CPU time of a process in clock ticks, from `/proc/<pid>/stat`; undefined when unreadable. */
export function cpuTicksOf(pid: number | null | undefined): number | undefined {
  if (pid === null || pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // Fields after the command (which may hold spaces) start after its closing parenthesis; utime and stime are the 14th and 15th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? ticks : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Follows ffmpeg's `-progress` report on `stream` (`key=value` lines): the watchdog hears of
 * progress when one of the `growing` keys changes value (a report alone is not progress: newer
 * ffmpeg reports on schedule while its read hangs). Every line is also handed to `onLine`.
 */
export function followProgress(stream: Readable, watchdog: StallWatchdog, growing: readonly string[], onLine?: (key: string, value: string) => void): void {
  const reached = new Map<string, string>();
  let pending = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const lines = (pending + chunk).split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      const [key = '', value = ''] = line.split('=', 2);
      if (growing.includes(key) && value !== reached.get(key)) {
        reached.set(key, value);
        watchdog.waiting();
      }
      onLine?.(key, value);
    }
  });
}
