/** Milliseconds an ffmpeg run may go without progress before it is stopped. */
export const DEFAULT_STALL_TIMEOUT_MS = 60_000;

/**
 * Fires once when ffmpeg has been waited on longer than the timeout without progress. Only
 * waiting counts: while a consumer holds what ffmpeg gave (a batch of frames), ffmpeg is
 * blocked on its pipe by design, and the caller says so with {@link busy}. With `cpuTicks`
 * (the CPU time ffmpeg has used), a run that works without output yet (decoding from the
 * keyframe before a seek's target, which can take long in a source with rare keyframes) is not
 * taken for stalled: a stall is no output and no CPU, as of a source on a hung mount or pipe.
 */
export class StallWatchdog {
  fired = false;
  private waitingSince: number | null = null;
  private lastTicks: number | undefined;
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly timeoutMs: number,
    onStall: () => void,
    cpuTicks?: () => number | undefined,
  ) {
    this.timer = setInterval(
      () => {
        if (this.waitingSince === null || this.fired) return;
        const ticks = cpuTicks?.();
        if (ticks !== undefined && ticks !== this.lastTicks) {
          this.lastTicks = ticks;
          this.waitingSince = Date.now();
        } else if (Date.now() - this.waitingSince > timeoutMs) {
          this.fired = true;
          onStall();
        }
      },
      Math.max(50, Math.min(1000, timeoutMs / 4)),
    );
    this.timer.unref();
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
