import { coerceError } from './errors.js';
import type { Logger } from './logger.js';

type Handler = () => Promise<unknown> | unknown;

export interface ShutdownOptions {
  /** Milliseconds all handlers together may take before the process gives up on them. */
  timeoutMs: number;
  logger: Logger;
}

/**
 * Named clean-up handlers of one process. They run in reverse order of registration (the last
 * thing started is the first stopped: workers before the pool they feed, pools before the
 * connections they use), under one deadline. `shutdown()` is idempotent.
 */
export class ShutdownRegistry {
  private readonly handlers: { name: string; run: Handler }[] = [];
  private closing: Promise<number> | undefined;

  constructor(private readonly options: ShutdownOptions) {}

  register(name: string, run: Handler): void {
    this.handlers.push({ name, run });
  }

  get isShuttingDown(): boolean {
    return this.closing !== undefined;
  }

  /** Runs every handler; resolves to the exit code: 0 when all finished in time, 1 otherwise. */
  shutdown(reason: string): Promise<number> {
    this.closing ??= this.runAll(reason);
    return this.closing;
  }

  private async runAll(reason: string): Promise<number> {
    const { logger, timeoutMs } = this.options;
    logger.info({ reason, handlers: this.handlers.map((h) => h.name).reverse() }, 'shutting down');
    const failures: Error[] = [];
    const deadline = Date.now() + timeoutMs;
    for (const handler of [...this.handlers].reverse()) {
      const remaining = Math.max(0, deadline - Date.now());
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          Promise.resolve().then(handler.run),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`${handler.name} did not finish within the shutdown deadline`)), remaining);
          }),
        ]);
        logger.debug({ handler: handler.name }, 'closed');
      } catch (error) {
        failures.push(new Error(`${handler.name}: ${coerceError(error).message}`, { cause: error }));
      } finally {
        clearTimeout(timer);
      }
    }
    if (failures.length) {
      logger.error({ err: new AggregateError(failures, 'shutdown finished with errors') }, 'shutdown finished with errors');
      return 1;
    }
    logger.info('shutdown complete');
    return 0;
  }

  /**
   * First SIGTERM/SIGINT (or the supervisor gone, {@link onStopRequests}): graceful shutdown, then
   * exit with its code. A second signal: exit at once with 128 + signal number, as a shell would report it.
   */
  installSignalHandlers(): void {
    onStopRequests(
      (reason) => void this.shutdown(reason).then((code) => process.exit(code)),
      (signal) => {
        this.options.logger.warn({ signal }, 'second signal: forcing exit');
        process.exit(signal === 'SIGINT' ? 130 : 143);
      },
    );
  }
}

/**
 * The same signal again this soon after the first is the first one delivered twice, not a second
 * request: a terminal's Ctrl-C reaches every process of its foreground group, and npm also
 * forwards the signal it gets to the script it runs (`npm start`, `npm start -w apps/producer`).
 */
export const REPEATED_SIGNAL_MS = 500;

/**
 * Calls `stop` once: on the first SIGTERM or SIGINT, or when the supervisor that started this
 * process with an IPC channel goes away (`npm start` killed, or its terminal closed: its apps would
 * otherwise run on unseen, holding their ports and taking jobs). Calls `force` on a later signal,
 * except the first one repeated within {@link REPEATED_SIGNAL_MS}.
 */
export function onStopRequests(stop: (reason: string) => void, force: (signal: NodeJS.Signals) => void): void {
  let first: { signal: NodeJS.Signals; at: number } | undefined;
  let stopped = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (!stopped) {
      stopped = true;
      first = { signal, at: Date.now() };
      stop(signal);
    } else if (!first || signal !== first.signal || Date.now() - first.at >= REPEATED_SIGNAL_MS) force(signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  if (process.channel) {
    // The channel is only listened to for its end; it must not keep a finished process alive.
    process.channel.unref();
    process.once('disconnect', () => {
      if (stopped) return;
      stopped = true;
      stop('supervisor gone');
    });
  }
}
