/** Milliseconds an ffmpeg run may go without progress before it is stopped. */
export const DEFAULT_STALL_TIMEOUT_MS = 60_000;

/** Clock ticks a second in `/proc/<pid>/stat` (USER_HZ), 100 on Linux. */
const TICKS_PER_SECOND = 100;
/** Share of one core ffmpeg must use between two checks for its work to count as progress. */
const BUSY_SHARE = 0.1;
/** How many timeouts its CPU alone may stretch a wait for ffmpeg's output to. */
const CPU_GRACE_TIMEOUTS = 10;

/**
 * Fires once when ffmpeg has been waited on longer than the timeout without progress. Only
 * waiting counts: while a consumer holds what ffmpeg gave (a batch of frames), ffmpeg is
 * blocked on its pipe by design, and the caller says so with {@link busy}. With `cpuTicks`
 * (the CPU time ffmpeg has used), a run that works hard without output yet (decoding from the
 * keyframe before a seek's target, long in a source with rare keyframes) is not taken for
 * stalled: a stall is no output and next to no CPU (under a tenth of a core), as of a source on
 * a hung mount or pipe. Its CPU stretches a wait for output to ten timeouts at most, so a run
 * busy in a loop that never outputs is stopped too.
 */
export class StallWatchdog {
  fired = false;
  /** The limit that was passed when it fired: the timeout, or ten of them for a busy run without output. */
  limitMs: number;
  private waitingSince: number | null = null;
  private workingAt = 0;
  private lastTicks: number | undefined;
  private lastCheck = Date.now();
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly timeoutMs: number,
    onStall: () => void,
    private readonly cpuTicks?: () => number | undefined,
  ) {
    this.limitMs = timeoutMs;
    this.timer = setInterval(
      () => {
        if (this.waitingSince === null || this.fired) return;
        const now = Date.now();
        if (this.working(now)) this.workingAt = now;
        const quietMs = now - Math.max(this.waitingSince, this.workingAt);
        const outputlessMs = now - this.waitingSince;
        if (quietMs <= timeoutMs && outputlessMs <= timeoutMs * CPU_GRACE_TIMEOUTS) return;
        this.limitMs = quietMs > timeoutMs ? timeoutMs : timeoutMs * CPU_GRACE_TIMEOUTS;
        this.fired = true;
        onStall();
      },
      Math.max(50, Math.min(1000, timeoutMs / 4)),
    );
    this.timer.unref();
  }

  /** Whether ffmpeg used at least {@link BUSY_SHARE} of a core since the last check. */
  private working(now: number): boolean {
    const ticks = this.cpuTicks?.();
    const before = this.lastTicks;
    const elapsedSeconds = (now - this.lastCheck) / 1000;
    this.lastTicks = ticks;
    this.lastCheck = now;
    if (ticks === undefined || before === undefined) return false;
    return (ticks - before) / TICKS_PER_SECOND >= BUSY_SHARE * elapsedSeconds;
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
