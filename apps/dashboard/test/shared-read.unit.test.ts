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

it('starts no second read while one is in flight, however long it takes, and counts its age from its answer', async () => {
  let reads = 0;
  let finish: ((value: number) => void) | undefined;
  const shared = sharedRead(30, () => {
    reads += 1;
    return new Promise<number>((resolve) => {
      finish = resolve;
    });
  });
  const first = shared.read();
  await new Promise((resolve) => setTimeout(resolve, 60));
  // Longer than its time already, and still in flight: the same read.
  const second = shared.read();
  expect(reads).toBe(1);
  finish!(7);
  expect(await Promise.all([first, second])).toEqual([7, 7]);
  // Fresh from its answer, not from its start.
  expect(await shared.read()).toBe(7);
  expect(reads).toBe(1);
});
