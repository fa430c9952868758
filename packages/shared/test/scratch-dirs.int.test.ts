/**
 * Scratch folders left by killed processes: real child processes make them, one is SIGKILLed,
 * and the sweep a starting worker runs removes its folders alone.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readdir, rm, utimes } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeScratchDir, sweepScratchDirs } from '../src/scratch-dirs.js';

const SHARED = fileURLToPath(new URL('../dist/scratch-dirs.js', import.meta.url));
let root: string;

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'scratch-sweep-'));
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A node process that makes a scratch folder of `kind` in the root, prints its name, and stays until killed. */
async function processWithFolder(kind: string): Promise<{ child: ChildProcess; folder: string }> {
  const script = `const { makeScratchDir } = await import(${JSON.stringify(SHARED)});
    const dir = await makeScratchDir(${JSON.stringify(kind)}, ${JSON.stringify(root)});
    console.log(dir);
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  return { child, folder: path.basename(line.toString().trim()) };
}

async function kill(child: ChildProcess): Promise<void> {
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

it('removes the folders of a killed process, and keeps those of running ones and of this one', async () => {
  const killed = await processWithFolder('audio');
  const alive = await processWithFolder('captions');
  const own = path.basename(await makeScratchDir('spawn', root));
  try {
    await kill(killed.child);
    expect(killed.folder).toMatch(/^clipline-audio-[0-9a-f]{8}\.\d+\.[0-9a-z]+-\w{6}$/);
    expect(await sweepScratchDirs(root)).toEqual([killed.folder]);
    expect((await readdir(root)).sort()).toEqual([alive.folder, own].sort());
  } finally {
    await kill(alive.child);
  }
  expect(await sweepScratchDirs(root)).toEqual([alive.folder]);
  expect(await readdir(root)).toEqual([own]);
});

it("removes a folder of this process's pid made by an earlier process (a restarted container's pid 1), not another host's", async () => {
  const own = path.basename(await makeScratchDir('audio', root));
  const host = own.split('-')[2]!.split('.')[0]!;
  const predecessor = `clipline-audio-${host}.${process.pid}.1-abcdef`;
  // Another container sharing the directory: its pid 99999999 runs nowhere here, yet its folder stays.
  const otherHost = `clipline-audio-${host === 'ffffffff' ? '00000000' : 'ffffffff'}.99999999.1-abcdef`;
  await mkdir(path.join(root, predecessor));
  await mkdir(path.join(root, otherHost));
  expect(await sweepScratchDirs(root)).toEqual([predecessor]);
  expect((await readdir(root)).sort()).toEqual([otherHost, own].sort());
});

it('removes folders named before this scheme once a day old, and leaves anything else alone', async () => {
  const names = ['clipline-audio-Old123', 'clipline-captions-New123', 'clipline-speech-audio-Xy12ab', 'other-audio-1.a-abcdef'];
  for (const name of names) await mkdir(path.join(root, name));
  const twoDaysAgo = new Date(Date.now() - 2 * 24 * 3600_000);
  for (const name of names.filter((n) => n !== 'clipline-captions-New123')) await utimes(path.join(root, name), twoDaysAgo, twoDaysAgo);
  expect(await sweepScratchDirs(root)).toEqual(['clipline-audio-Old123']);
  expect((await readdir(root)).sort()).toEqual(names.filter((n) => n !== 'clipline-audio-Old123').sort());
});
