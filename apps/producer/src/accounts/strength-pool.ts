import { threadModulePath } from '@clipline/shared';
import { Piscina } from 'piscina';
import type { StrengthVerdict } from './password-strength.js';

/** One small thread pool per producer process for password strength checks. */
export class StrengthPool {
  private pool: Piscina | undefined;

  check(password: string, userInputs: string[]): Promise<StrengthVerdict> {
    this.pool ??= new Piscina({
      filename: threadModulePath(import.meta.url, './password-strength.js'),
      name: 'passwordStrength',
      minThreads: 0,
      maxThreads: 1,
      idleTimeout: 60_000,
      maxQueue: 256,
    });
    return this.pool.run({ password, userInputs }) as Promise<StrengthVerdict>;
  }

  async close(): Promise<void> {
    await this.pool?.destroy();
  }
}
