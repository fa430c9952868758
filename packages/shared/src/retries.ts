/**
 * Runs `work`, and again after each failure, `attempts` times in all: the first retry after
 * `firstDelayMs`, each next one after twice as long, up to `maxDelayMs`. The last failure is thrown.
 */
export async function withRetries<T>(work: () => Promise<T>, options: { attempts: number; firstDelayMs: number; maxDelayMs?: number }): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await work();
    } catch (error) {
      if (attempt >= options.attempts) throw error;
      const delay = Math.min(options.maxDelayMs ?? Number.POSITIVE_INFINITY, options.firstDelayMs * 2 ** (attempt - 1));
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}
