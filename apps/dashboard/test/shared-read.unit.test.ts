import { sharedRead } from '../src/shared-read.js';

describe('sharedRead', () => {
  it('makes one read for callers who ask at once or within its time, and reads again after it', async () => {
    let reads = 0;
    const shared = sharedRead(50, async () => {
      reads += 1;
      await new Promise((resolve) => setTimeout(resolve, 10));
      return reads;
    });
    expect(await Promise.all(Array.from({ length: 20 }, () => shared.read()))).toEqual(Array(20).fill(1));
    expect(await shared.read()).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(await shared.read()).toBe(2);
    shared.forget();
    expect(await shared.read()).toBe(3);
  });

  it('keeps no failed read: the next caller reads again', async () => {
    let reads = 0;
    const shared = sharedRead(60_000, async () => {
      reads += 1;
      if (reads === 1) throw new Error('Redis away');
      return 'counts';
    });
    await expect(Promise.all([shared.read(), shared.read()])).rejects.toThrow('Redis away');
    expect(reads).toBe(1);
    expect(await shared.read()).toBe('counts');
    expect(reads).toBe(2);
  });
});
