/**
 * `.part` files: each run writes its own next to the target, and the run that holds the job
 * removes those other runs left (a run killed mid-write leaves its own behind).
 */
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { discardPart, partFileFor, removeOtherParts, writeWhole } from '@clipline/shared';

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

it('leaves no part behind when a write fails while its file is still being opened', async () => {
  // A failure on the first chunk reaches the caller while the write stream is still opening
  // its file; removing the part at once let the open create it afterwards (a few runs in a
  // thousand, more on a loaded machine). The writer is closed before the part is removed.
  const folder = await mkdtemp(path.join(dir, 'opening-'));
  let refused = 0;
  const removedBeforeClose: number[] = [];
  for (let run = 0; run < 200; run += 1) {
    const partial = partFileFor(path.join(folder, `${run}.mp3`));
    const writer = createWriteStream(partial);
    const refuse = new Transform({ transform: (_chunk, _encoding, callback) => callback(new Error('not audio')) });
    try {
      await pipeline(Readable.from([Buffer.from('x')]), refuse, writer);
    } catch (error) {
      if ((error as Error).message === 'not audio') refused += 1;
      await discardPart(partial, writer);
      if (!writer.closed) removedBeforeClose.push(run);
    }
  }
  expect(refused).toBe(200);
  expect(removedBeforeClose).toEqual([]);
  await sleep(20);
  expect(await readdir(folder)).toEqual([]);
  // Without a writer (the failure came before one was made) it only removes the file.
  const unopened = partFileFor(path.join(folder, 'x.mp3'));
  await writeFile(unopened, 'x');
  await discardPart(unopened);
  expect(await readdir(folder)).toEqual([]);
});

it('writes a whole file through a part of its own, and leaves no part when the rename fails', async () => {
  const target = path.join(dir, 'cover.png');
  const bytes = Buffer.from('a whole picture');
  await writeWhole(target, bytes);
  expect((await readFile(target)).equals(bytes)).toBe(true);
  expect((await readdir(dir)).filter((name) => name.startsWith('cover.png.'))).toEqual([]);
  // A directory in the way: the rename fails, and the part goes with it.
  const blocked = path.join(dir, 'blocked');
  await mkdir(path.join(blocked, 'inside'), { recursive: true });
  await expect(writeWhole(blocked, bytes)).rejects.toThrow();
  expect((await readdir(dir)).filter((name) => name.startsWith('blocked.'))).toEqual([]);
});
