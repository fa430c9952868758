/** A read shared by its callers, and how to drop what it holds (after a change it would hide). */
export interface SharedRead<T> {
  read(): Promise<T>;
  forget(): void;
}

/**
 * `read` shared by every caller for `ttlMs`: one read in flight at a time, its answer served to
 * all who ask meanwhile and until it is `ttlMs` old. A failed read is not kept, so the next
 * caller tries again. For what many may ask at once (the overview's polling, an open /metrics)
 * and each answer costs Redis a scan of every queue.
 */
export function sharedRead<T>(ttlMs: number, read: (now: number) => Promise<T>): SharedRead<T> {
  let cached: { at: number; value: Promise<T> } | undefined;
  return {
    read: () => {
      const now = Date.now();
      if (!cached || now - cached.at > ttlMs) {
        const value = read(now);
        cached = { at: now, value };
        value.catch(() => {
          if (cached?.value === value) cached = undefined;
        });
      }
      return cached.value;
    },
    forget: () => {
      cached = undefined;
    },
  };
}
