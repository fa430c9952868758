import { mkdir, rm } from 'node:fs/promises';
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
}

export function videoSourceKey(videoId: string, extension: string): string {
  const ext = /^\.[a-z0-9]{1,8}$/i.test(extension) ? extension.toLowerCase() : '.bin';
  return `videos/${videoId}/source${ext}`;
}
