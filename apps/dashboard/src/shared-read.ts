/** A read shared by its callers, and how to drop what it holds (after a change it would hide). */
export interface SharedRead<T> {
  read(): Promise<T>;
  forget(): void;
}

/**
 * `read` shared by every caller: never more than one in flight (callers meanwhile get its
 * answer), and an answer served until it is `ttlMs` old, counted from when it came. A failed read
 * is not kept, so the next caller tries again. For what many may ask at once (the overview's
 * polling, an open /metrics) and each answer costs Redis a scan of every queue.
 */
export function sharedRead<T>(ttlMs: number, read: (now: number) => Promise<T>): SharedRead<T> {
  let answered: { at: number; value: Promise<T> } | undefined;
  let inFlight: Promise<T> | undefined;
  return {
    read: () => {
      if (answered && Date.now() - answered.at <= ttlMs) return answered.value;
      if (inFlight) return inFlight;
      const value = read(Date.now());
      inFlight = value;
      const settled = (ok: boolean) => {
        if (inFlight !== value) return;
        inFlight = undefined;
        if (ok) answered = { at: Date.now(), value };
      };
      value.then(
        () => settled(true),
        () => settled(false),
      );
      return value;
    },
    forget: () => {
      answered = undefined;
      inFlight = undefined;
    },
  };
}
