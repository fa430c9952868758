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
   * First SIGTERM/SIGINT: graceful shutdown, then exit with its code. A second signal: exit at
   * once with 128 + signal number, as a shell would report it.
   */
  installSignalHandlers(): void {
    const onSignal = (signal: NodeJS.Signals) => {
      if (this.isShuttingDown) {
        this.options.logger.warn({ signal }, 'second signal: forcing exit');
        process.exit(signal === 'SIGINT' ? 130 : 143);
      }
      void this.shutdown(signal).then((code) => process.exit(code));
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }
}
