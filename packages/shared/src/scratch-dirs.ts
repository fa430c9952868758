/**
 * Scratch folders in the system's temporary directory (the transcript's audio, burned captions'
 * subtitles, the tool spawner's socket). Each is removed when its work ends, but a process that
 * is killed (SIGKILL, the OOM killer) leaves its folders behind: up to 24 MB of audio each, on a
 * `/tmp` that in Kubernetes is a size-limited volume surviving container restarts. So each folder
 * is named for the process that made it (`clipline-<kind>-<host>.<pid>.<start>-XXXXXX`: a hash
 * of the host name, the pid and the process's start time), and a worker starting removes those
 * of processes of its own host (its own pid namespace: a container) that no longer run. Folders
 * of other hosts sharing the directory are left alone: their pids mean nothing here.
 */
import { mkdtempSync, statSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';

/** The kinds of scratch folder clipline makes. */
export type ScratchKind = 'audio' | 'captions' | 'spawn';

/** This host (container), short: a socket's path inside the folder must stay under 108 bytes. */
const HOST = createHash('sha256').update(os.hostname()).digest('hex').slice(0, 8);

/** This process, as its folders name it: the pid alone could be a dead predecessor's (pid 1 in a restarted container). */
const OWNER = `${HOST}.${process.pid}.${Math.round(Date.now() - process.uptime() * 1000).toString(36)}`;

const NAMED = /^clipline-(audio|captions|spawn)-([0-9a-f]{8})\.(\d+)\.([0-9a-z]+)-[A-Za-z0-9]{6}$/;
/** Folders made before they were named for their process: removed once a day old. */
const UNNAMED = /^clipline-(audio|captions|spawn)-[A-Za-z0-9]{6}$/;
const UNNAMED_MAX_AGE_MS = 24 * 3600_000;

function prefixOf(kind: ScratchKind, root: string): string {
  return path.join(root, `clipline-${kind}-${OWNER}-`);
}

/** A new scratch folder of this process. */
export function makeScratchDir(kind: ScratchKind, root = os.tmpdir()): Promise<string> {
  return mkdtemp(prefixOf(kind, root));
}

export function makeScratchDirSync(kind: ScratchKind, root = os.tmpdir()): string {
  return mkdtempSync(prefixOf(kind, root));
}

/** Whether a process of this id runs (one of another user's counts). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether the folder `name` was left by a process that no longer runs (or is a day-old one of before). */
function abandoned(name: string, root: string, now: number): boolean {
  const named = NAMED.exec(name);
  if (named) {
    const owner = `${named[2]}.${named[3]}.${named[4]}`;
    if (owner === OWNER || named[2] !== HOST) return false;
    const pid = Number(named[3]);
    // Our own pid with another start: a predecessor's, as in a restarted container.
    return pid === process.pid || !running(pid);
  }
  if (!UNNAMED.test(name)) return false;
  try {
    return now - statSync(path.join(root, name)).mtimeMs > UNNAMED_MAX_AGE_MS;
  } catch {
    return false;
  }
}

/** Removes the scratch folders that processes no longer running left in `root`; answers their names. */
export async function sweepScratchDirs(root = os.tmpdir(), now = Date.now()): Promise<string[]> {
  const names = await readdir(root).catch(() => [] as string[]);
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith('clipline-') || !abandoned(name, root, now)) continue;
    const where = path.join(root, name);
    if (
      !(await stat(where).then(
        (entry) => entry.isDirectory(),
        () => false,
      ))
    )
      continue;
    await rm(where, { recursive: true, force: true }).then(
      () => removed.push(name),
      () => {},
    );
  }
  return removed;
}
