/**
 * How the renders running in one process share its cores. Each render takes a lease when it
 * starts; its ffmpeg threads over the cores divided by the renders running then (itself
 * included), so a lone long clip gets every core and several short ones get one each rather
 * than all of them fighting over every core with threads that mostly wait on one another.
 */
export interface RenderLease {
  /** Threads this render's ffmpeg runs (`-threads`), at least 1. */
  threads: number;
  release(): void;
}

export class RenderCores {
  private active = 0;

  /** @param cores Cores the process may use (see `usableCores` in @clipline/shared). */
  constructor(readonly cores: number) {}

  /** Renders holding a lease now. */
  get running(): number {
    return this.active;
  }

  acquire(): RenderLease {
    this.active++;
    const threads = Math.max(1, Math.floor(this.cores / this.active));
    let released = false;
    return {
      threads,
      release: () => {
        if (released) return;
        released = true;
        this.active--;
      },
    };
  }
}
