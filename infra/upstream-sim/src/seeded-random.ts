import { createHash } from 'node:crypto';

/**
 * A small, fast generator (mulberry32) so that a seed replays the same fault decisions and the
 * same generated content. Not for anything security-related.
 */
export class SeededRandom {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let mixed = this.state;
    mixed = Math.imul(mixed ^ (mixed >>> 15), mixed | 1);
    mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61);
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 4294967296;
  }

  between(min: number, max: number): number {
    return min + (max - min) * this.next();
  }

  integer(min: number, maxInclusive: number): number {
    return Math.floor(this.between(min, maxInclusive + 1));
  }

  pick<T>(items: readonly T[]): T {
    const item = items[Math.floor(this.next() * items.length)];
    if (item === undefined) throw new Error('cannot pick from an empty list');
    return item;
  }
}

/** A 32-bit seed derived from a base seed and any labels (endpoint name, request content). */
export function deriveSeed(seed: number, ...labels: readonly (string | number | Buffer)[]): number {
  const hash = createHash('sha256').update(String(seed));
  for (const label of labels) hash.update('\0').update(typeof label === 'number' ? String(label) : label);
  return hash.digest().readUInt32LE(0);
}
