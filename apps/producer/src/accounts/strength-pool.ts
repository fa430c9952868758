import { threadModulePath } from '@clipline/shared';
import { Piscina } from 'piscina';
import type { StrengthVerdict } from './password-strength.js';

/** One small thread pool per producer process for password strength checks. */
export class StrengthPool {
  private pool: Piscina | undefined;

  /** `onThreadError` hears a thread that failed outside a check (a check's failure goes to its caller). */
  constructor(
    private readonly onThreadError: (error: unknown) => void = () => {},
    /** Checks waiting for the thread at most; past it a check is refused at once. */
    private readonly maxQueue = 256,
  ) {}

  check(password: string, userInputs: string[]): Promise<StrengthVerdict> {
    this.pool ??= this.open();
    return this.pool.run({ password, userInputs }) as Promise<StrengthVerdict>;
  }

  async close(): Promise<void> {
    await this.pool?.destroy();
  }

  private open(): Piscina {
    const pool = new Piscina({
      filename: threadModulePath(import.meta.url, './password-strength.js'),
      name: 'passwordStrength',
      minThreads: 0,
      maxThreads: 1,
      idleTimeout: 60_000,
      maxQueue: this.maxQueue,
    });
    // Piscina emits such a failure on the pool: unheard, it would end the process.
    pool.on('error', this.onThreadError);
    return pool;
  }
}
