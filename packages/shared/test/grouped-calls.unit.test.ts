import { GroupedCalls } from '../src/grouped-calls.js';

/** A send that records each group and answers when `release` is called for it. */
function recorder() {
  const sent: Array<{ context: string; entries: number[]; release: () => void }> = [];
  const calls = new GroupedCalls<number, string>(
    (context, entries) =>
      new Promise<void>((resolve) => {
        sent.push({ context, entries, release: resolve });
      }),
  );
  return { calls, sent };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

it('sends the calls of one turn as one group per key, with the context of its first call', async () => {
  const { calls, sent } = recorder();
  let made = 0;
  for (const entry of [1, 2, 3]) calls.add('a', () => `a-${++made}`, entry);
  calls.add('b', () => 'b', 4);
  expect(sent).toHaveLength(0);
  await turn();
  expect(sent.map(({ context, entries }) => ({ context, entries }))).toEqual([
    { context: 'a-1', entries: [1, 2, 3] },
    { context: 'b', entries: [4] },
  ]);
});

it('holds a key while its group is in flight, then sends what arrived meanwhile as one group', async () => {
  const { calls, sent } = recorder();
  calls.add('a', () => 'a', 1);
  await turn();
  calls.add('a', () => 'a', 2);
  calls.add('a', () => 'a', 3);
  calls.add('b', () => 'b', 9);
  await turn();
  // 'b' went out; 'a' waits for its first group.
  expect(sent.map((group) => group.entries)).toEqual([[1], [9]]);
  sent[0]?.release();
  await turn();
  await turn();
  expect(sent.map((group) => group.entries)).toEqual([[1], [9], [2, 3]]);
});

it('goes on after a send that throws', async () => {
  const seen: number[][] = [];
  const calls = new GroupedCalls<number, null>(async (_context, entries) => {
    seen.push(entries);
    throw new Error('lost');
  });
  calls.add('a', () => null, 1);
  await turn();
  calls.add('a', () => null, 2);
  await turn();
  await turn();
  expect(seen).toEqual([[1], [2]]);
});
