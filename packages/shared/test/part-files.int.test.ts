/**
 * `.part` files: each run writes its own next to the target, and the run that holds the job
 * removes those other runs left (a run killed mid-write leaves its own behind).
 */
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { partFileFor, removeOtherParts } from '@clipline/shared';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'clipline-parts-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

it("names a run's own part, and removes only the parts other runs left for the same target", async () => {
  const target = path.join(dir, '0.mp4');
  const mine = partFileFor(target);
  const theirs = partFileFor(target);
  expect(path.basename(mine)).toMatch(/^0\.mp4\.[0-9a-f]{8}\.part$/);
  expect(theirs).not.toBe(mine);
  const neighbours = ['0.mp4', '0.mp4.audio.1234abcd.part', '10.mp4.1234abcd.part', '0.jpg.1234abcd.part', '0.mp4.notmine.part'];
  for (const name of [...neighbours, path.basename(theirs)]) await writeFile(path.join(dir, name), 'x');
  await removeOtherParts(target);
  expect((await readdir(dir)).sort()).toEqual([...neighbours].sort());
  // A folder that does not exist yet has nothing to remove.
  await removeOtherParts(path.join(dir, 'missing', '0.mp4'));
});
