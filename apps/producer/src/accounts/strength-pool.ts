import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { StrengthVerdict } from './password-strength.js';

/** The compiled task file; when this module runs from TypeScript sources (tests), the one under dist/. */
function taskFile(): string {
  const beside = fileURLToPath(new URL('./password-strength.js', import.meta.url));
  if (existsSync(beside)) return beside;
  const built = beside.replace('/src/', '/dist/');
  if (existsSync(built)) return built;
  throw new Error(`password strength task not built: ${built} is missing (run "npm run build")`);
}

/** One small thread pool per producer process for password strength checks. */
export class StrengthPool {
  private pool: Piscina | undefined;

  check(password: string, userInputs: string[]): Promise<StrengthVerdict> {
    this.pool ??= new Piscina({ filename: taskFile(), name: 'passwordStrength', minThreads: 0, maxThreads: 1, idleTimeout: 60_000, maxQueue: 256 });
    return this.pool.run({ password, userInputs }) as Promise<StrengthVerdict>;
  }

  async close(): Promise<void> {
    await this.pool?.destroy();
  }
}
