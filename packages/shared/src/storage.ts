import { randomUUID } from 'node:crypto';
import type { WriteStream } from 'node:fs';
import { lstat, mkdir, opendir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * Files the pipeline keeps (sources, renders), addressed by key (`videos/<id>/source.mp4`).
 * Keys are relative and never escape the root.
 */
export class LocalStorage {
  constructor(readonly root: string) {}

  pathOf(key: string): string {
    const full = path.resolve(this.root, key);
    if (!full.startsWith(path.resolve(this.root) + path.sep)) throw new Error(`storage key escapes the storage root: ${key}`);
    return full;
  }

  /** Makes sure the directory of `key` exists and returns the key's path. */
  async prepare(key: string): Promise<string> {
    const full = this.pathOf(key);
    await mkdir(path.dirname(full), { recursive: true });
    return full;
  }

  async remove(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true, recursive: true });
  }

  /**
   * Bytes held at `key`: a file's size, or the sum over the regular files of a directory tree
   * (symbolic links are not followed). 0 when nothing is there.
   */
  async sizeOf(key: string): Promise<number> {
    return bytesAt(this.pathOf(key));
  }

  /** Bytes of every file under the root. */
  async totalSize(): Promise<number> {
    return bytesAt(path.resolve(this.root));
  }
}

/** Files vanish under a walk (a purge, a release) as it goes: those count as 0. */
async function bytesAt(full: string): Promise<number> {
  try {
    const stats = await lstat(full);
    if (!stats.isDirectory()) return stats.isFile() ? stats.size : 0;
    let total = 0;
    // Entries are streamed (one open handle per level of depth), never listed whole: a tree of a
    // million files walks in bounded memory.
    for await (const entry of await opendir(full)) {
      if (entry.isDirectory() || entry.isFile()) total += await bytesAt(path.join(full, entry.name));
    }
    return total;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw error;
  }
}

/**
 * A `.part` file of this writer's own next to `target`, renamed into place when whole. Should one
 * job run twice at once (its lock lost while Redis was away, the stall check handing it out
 * again), neither run writes into, renames or removes the other's file.
 */
export function partFileFor(target: string): string {
  return `${target}.${randomUUID().slice(0, 8)}.part`;
}

/** Writes `bytes` to `target` through a `.part` file of this writer's own ({@link partFileFor}), renamed into place when whole. */
export async function writeWhole(target: string, bytes: Uint8Array): Promise<void> {
  const partial = partFileFor(target);
  try {
    await writeFile(partial, bytes);
    await rename(partial, target);
  } catch (error) {
    await rm(partial, { force: true });
    throw error;
  }
}

/**
 * Removes a `.part` file once `writer` (the stream that wrote it, if one was made) has let go
 * of it. A write stream destroyed while it is still opening its file creates the file after
 * the failure is reported, so removing it at once could leave the `.part` behind.
 */
export async function discardPart(partial: string, writer?: WriteStream): Promise<void> {
  if (writer && !writer.closed) {
    await new Promise<void>((resolve) => {
      writer.once('close', resolve);
      writer.on('error', () => {}); // the failure being handled already reported it
      writer.destroy();
    });
  }
  await rm(partial, { force: true });
}

/**
 * Removes the `.part` files other runs left next to `target` (see {@link partFileFor}): a run
 * killed mid-write leaves its own behind. Called by the run that holds the job now: any other
 * run writing the same target lost its lock, and its result would be thrown away anyway.
 */
export async function removeOtherParts(target: string): Promise<void> {
  const base = path.basename(target);
  const pattern = new RegExp(`^${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.[0-9a-f]{8}\\.part$`);
  const names = await readdir(path.dirname(target)).catch(() => [] as string[]);
  await Promise.all(names.filter((name) => pattern.test(name)).map((name) => rm(path.join(path.dirname(target), name), { force: true })));
}

/** The directory holding everything stored for one video: its source, clips and AI files. */
export function videoStorageKey(videoId: string): string {
  return `videos/${videoId}`;
}

export function videoSourceKey(videoId: string, extension: string): string {
  const ext = /^\.[a-z0-9]{1,8}$/i.test(extension) ? extension.toLowerCase() : '.bin';
  return `videos/${videoId}/source${ext}`;
}

/**
 * `text` with every path under `root` written relative to it: messages that API clients read
 * (a failure's reason quoting a tool or the file system) name stored files without showing the
 * server's folders.
 */
export function relativeToStorage(text: string, root: string): string {
  return text.replaceAll(path.resolve(root) + path.sep, '');
}
