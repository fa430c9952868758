/**
 * Calls that go to a shared service together: those with the same key that arrive in one turn
 * of the event loop, or while the previous group of their key is in flight, are handed to `send`
 * as one group. At most one group of a key is in flight at a time; groups of different keys go
 * out side by side. Under load that is a few commands where every call made one; alone, a call
 * waits only for the end of its turn.
 */
export class GroupedCalls<Entry, Context> {
  private readonly waiting = new Map<string, { context: Context; entries: Entry[] }>();
  private readonly inFlight = new Set<string>();
  private scheduled = false;

  /** @param send answers every entry of a group; what it throws is lost, so it must settle each entry itself. */
  constructor(private readonly send: (context: Context, entries: Entry[]) => Promise<void>) {}

  /** Adds `entry` to the next group of `key`; `context` makes what the group shares, when it is the first. */
  add(key: string, context: () => Context, entry: Entry): void {
    let group = this.waiting.get(key);
    if (!group) {
      group = { context: context(), entries: [] };
      this.waiting.set(key, group);
    }
    group.entries.push(entry);
    this.schedule();
  }

  /** Sends, at the end of this turn, every group whose key has nothing in flight. */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      for (const [key, group] of this.waiting) {
        if (this.inFlight.has(key)) continue;
        this.waiting.delete(key);
        this.inFlight.add(key);
        void this.send(group.context, group.entries)
          .catch(() => {})
          .finally(() => {
            this.inFlight.delete(key);
            if (this.waiting.has(key)) this.schedule();
          });
      }
    });
  }
}
