/**
 * The stall watchdog's verdicts, on a clock of its own checks: no output and (next to) no CPU is
 * a stall after the timeout; a run working hard without output is given up to its busy limit.
 */
import { StallWatchdog } from '../src/stall-watchdog.js';

/** Resolves with the milliseconds after which the watchdog fired, and the limit it names. */
function firing(timeoutMs: number, ticksPerSecond: number | null, busyLimitMs?: number): Promise<{ afterMs: number; limitMs: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const cpuTicks = ticksPerSecond === null ? undefined : () => Math.floor(((Date.now() - started) / 1000) * ticksPerSecond);
    const watchdog: StallWatchdog = new StallWatchdog(
      timeoutMs,
      () => {
        watchdog.stop();
        resolve({ afterMs: Date.now() - started, limitMs: watchdog.limitMs });
      },
      cpuTicks,
      busyLimitMs,
    );
    watchdog.waiting();
  });
}

describe('the stall watchdog', () => {
  it('fires after the timeout when there is no output and nothing tells of CPU', async () => {
    const { afterMs, limitMs } = await firing(200, null);
    expect(limitMs).toBe(200);
    expect(afterMs).toBeGreaterThanOrEqual(200);
    expect(afterMs).toBeLessThan(1000);
  });

  it('takes a run using next to no CPU (a progress line now and then) for stalled', async () => {
    // 2 ticks a second: 2% of a core, as ffmpeg's main thread waking to report.
    const { afterMs, limitMs } = await firing(200, 2);
    expect(limitMs).toBe(200);
    expect(afterMs).toBeLessThan(1000);
  });

  it('gives a run busy without output up to its busy limit, then stops it too', async () => {
    // A whole core: decoding towards a seek's target, or a loop that never outputs.
    const { afterMs, limitMs } = await firing(100, 100, 1000);
    expect(limitMs).toBe(1000);
    expect(afterMs).toBeGreaterThanOrEqual(1000);
    expect(afterMs).toBeLessThan(3000);
  });
});
