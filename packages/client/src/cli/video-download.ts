import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ClipLineClient } from '../client.js';
import type { DownloadHeaders } from '../download-file.js';
import { ClipLineApiError } from '../errors.js';
import type { Clip, Video } from '../types.js';
import { describeError } from './describe-error.js';
import { formatBytes } from './format.js';
import type { ProgressBoard } from './progress-board.js';

/** Where a video's results went. */
export interface SavedVideo {
  id: string;
  folder: string;
  files: { path: string; bytes: number }[];
  bytes: number;
  /** Of `files`, those already on disk from an earlier download and still the server's (not fetched again). */
  unchangedFiles: number;
  /** Clips the video has but that were not rendered (their `error` is in video.json). */
  unrenderedClips: number;
}

/** Progress of one video's download, after every chunk and once per finished file. */
export interface VideoDownloadProgress {
  /** The file being written, e.g. `clip-0.mp4`. */
  file: string;
  filesDone: number;
  fileCount: number;
  /** Of the current file; its total is null until the server announced it. */
  fileBytes: number;
  fileTotalBytes: number | null;
  /** Of every file of the video so far. */
  videoBytes: number;
  fileFinished: boolean;
  /** The file was on disk already, as the server has it: nothing was fetched. */
  fileUnchanged?: boolean;
}

type ClipFileKind = 'clip' | 'thumbnail' | 'voiceover';

interface PlannedFile {
  apiPath: string;
  /** File name without extension: `clip-0`, `clip-0-thumbnail`, … */
  stem: string;
  kind: ClipFileKind;
}

// The server names a thumbnail's type only in its answer (a generated PNG or a JPEG frame).
const EXTENSIONS: Record<string, string> = { 'video/mp4': 'mp4', 'image/jpeg': 'jpg', 'image/png': 'png', 'image/webp': 'webp', 'audio/mpeg': 'mp3' };
const FALLBACK_EXTENSIONS: Record<ClipFileKind, string> = { clip: 'mp4', thumbnail: 'jpg', voiceover: 'mp3' };
/**
 * What an earlier download saved in a video's folder, by API path: the file's name, size and the
 * server's ETag, so that a download run again asks for each with `If-None-Match` and fetches only
 * what changed. Written before `video.json`.
 */
const MANIFEST = '.clipline-files.json';
interface ManifestEntry {
  name: string;
  bytes: number;
  etag: string;
}
/** A name the manifest may give: a plain file of the folder, of the planned file's stem. */
const MANIFEST_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*\.[a-z0-9]{1,5}$/;

/** A video id becomes a folder name: anything that could climb out of the output folder is refused. */
const SAFE_FOLDER_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

/** Why a video has nothing to download, or null when it is completed. */
export function notDownloadableReason(video: Video): string | null {
  switch (video.status) {
    case 'completed':
      return null;
    case 'failed':
      return `video ${video.id} failed${video.error ? ` (${video.error})` : ''}: it has no results to download`;
    case 'cancelled':
      return `video ${video.id} was cancelled: it has no results to download`;
    default:
      return `video ${video.id} is ${video.status} (${video.progress}%), not completed: download it once it completes (follow it with "clipline status ${video.id}")`;
  }
}

/** What a user reads when reading the video itself failed; a 404 covers both "no such video" and "not yours". */
export function describeVideoReadFailure(id: string, error: unknown): string {
  if (error instanceof ClipLineApiError && error.status === 404) return `video ${id} does not exist (or belongs to another tenant)`;
  return `could not read video ${id}: ${describeError(error)}`;
}

/** The folder's manifest; an absent, unreadable or foreign one counts as empty (every file is fetched). */
async function readManifest(folder: string): Promise<Map<string, ManifestEntry>> {
  const entries = new Map<string, ManifestEntry>();
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path.join(folder, MANIFEST), 'utf8'));
  } catch {
    return entries;
  }
  const files = (parsed as { files?: unknown } | null)?.files;
  if (typeof files !== 'object' || files === null) return entries;
  for (const [apiPath, entry] of Object.entries(files as Record<string, Partial<ManifestEntry>>)) {
    const { name, bytes, etag } = entry ?? {};
    if (typeof name === 'string' && MANIFEST_NAME.test(name) && Number.isSafeInteger(bytes) && typeof etag === 'string' && etag.length <= 256) {
      entries.set(apiPath, { name, bytes: bytes as number, etag });
    }
  }
  return entries;
}

/** The copy of `file` an earlier download left, when it is still there at the size it had. */
async function copyOnDisk(
  folder: string,
  file: PlannedFile,
  entry: ManifestEntry | undefined,
): Promise<{ path: string; bytes: number; etag: string } | undefined> {
  if (!entry?.name.startsWith(`${file.stem}.`)) return undefined;
  const copy = path.join(folder, entry.name);
  const found = await stat(copy).catch(() => undefined);
  return found?.isFile() && found.size === entry.bytes ? { path: copy, bytes: entry.bytes, etag: entry.etag } : undefined;
}

/** Writes `text` to `file` through a part file of its own, renamed when whole. */
async function writeWholeFile(file: string, text: string): Promise<void> {
  const part = `${file}.${randomBytes(4).toString('hex')}.part`;
  try {
    await writeFile(part, text);
    await rename(part, file);
  } catch (error) {
    await rm(part, { force: true });
    throw error;
  }
}

function plannedFiles(clips: readonly Clip[]): PlannedFile[] {
  return clips.flatMap((clip) => {
    const stem = `clip-${clip.index}`;
    const files: PlannedFile[] = [];
    if (clip.url) files.push({ apiPath: clip.url, stem, kind: 'clip' });
    if (clip.thumbnailUrl) files.push({ apiPath: clip.thumbnailUrl, stem: `${stem}-thumbnail`, kind: 'thumbnail' });
    if (clip.voiceoverUrl) files.push({ apiPath: clip.voiceoverUrl, stem: `${stem}-voiceover`, kind: 'voiceover' });
    return files;
  });
}

/**
 * Saves a completed video's clips, thumbnails and voice-overs under `<outDir>/<videoId>/`, one
 * file after the other, and then `video.json`. Every file is written through a `.part` file and
 * renamed when whole; `video.json` comes last, so a folder holding it is complete. A file an
 * earlier download saved there (see {@link MANIFEST}) is asked for with its ETag and kept as it
 * is when the server still has that version.
 */
export async function downloadVideoResults(
  client: ClipLineClient,
  video: Video,
  outDir: string,
  options: { signal?: AbortSignal; onProgress?: (progress: VideoDownloadProgress) => void } = {},
): Promise<SavedVideo> {
  const refusal = notDownloadableReason(video);
  if (refusal) throw new Error(refusal);
  if (!SAFE_FOLDER_NAME.test(video.id)) throw new Error(`the server sent a video id that cannot be a folder name: ${JSON.stringify(video.id.slice(0, 130))}`);
  const clips = video.clips ?? [];
  for (const clip of clips) {
    if (!Number.isSafeInteger(clip.index) || clip.index < 0)
      throw new Error(`the server sent clip ${clip.id} with an unusable index ${JSON.stringify(clip.index)}`);
  }
  const folder = path.join(outDir, video.id);
  await mkdir(folder, { recursive: true });

  const planned = plannedFiles(clips);
  const earlier = await readManifest(folder);
  const manifest: Record<string, ManifestEntry> = {};
  const unrenderedClips = clips.filter((clip) => clip.status !== 'rendered').length;
  const saved: SavedVideo = { id: video.id, folder, files: [], bytes: 0, unchangedFiles: 0, unrenderedClips };
  for (const [index, file] of planned.entries()) {
    const written = await downloadPlannedFile(client, file, folder, await copyOnDisk(folder, file, earlier.get(file.apiPath)), {
      signal: options.signal,
      report: (progress) => options.onProgress?.({ ...progress, filesDone: index, fileCount: planned.length, videoBytes: saved.bytes + progress.fileBytes }),
    });
    saved.files.push({ path: written.path, bytes: written.bytes });
    saved.bytes += written.bytes;
    if (written.unchanged) saved.unchangedFiles += 1;
    if (written.etag) manifest[file.apiPath] = { name: path.basename(written.path), bytes: written.bytes, etag: written.etag };
  }
  await writeWholeFile(path.join(folder, MANIFEST), `${JSON.stringify({ files: manifest }, null, 2)}\n`);
  await writeWholeFile(path.join(folder, 'video.json'), `${JSON.stringify(video, null, 2)}\n`);
  return saved;
}

type FileProgress = Pick<VideoDownloadProgress, 'file' | 'fileBytes' | 'fileTotalBytes' | 'fileFinished' | 'fileUnchanged'>;

/** One planned file into `folder`, named by the type the server gives it; its copy kept when the server still has it. */
async function downloadPlannedFile(
  client: ClipLineClient,
  file: PlannedFile,
  folder: string,
  unchangedCopy: { path: string; bytes: number; etag: string } | undefined,
  options: { signal: AbortSignal | undefined; report: (progress: FileProgress) => void },
): Promise<Awaited<ReturnType<ClipLineClient['downloadFile']>>> {
  let name = `${file.stem}.${FALLBACK_EXTENSIONS[file.kind]}`;
  const nameFrom = (headers: DownloadHeaders) => {
    name = `${file.stem}.${(headers.contentType && EXTENSIONS[headers.contentType]) || FALLBACK_EXTENSIONS[file.kind]}`;
    return path.join(folder, name);
  };
  let written: Awaited<ReturnType<ClipLineClient['downloadFile']>>;
  try {
    written = await client.downloadFile(file.apiPath, nameFrom, {
      signal: options.signal,
      onProgress: (received, total) => options.report({ file: name, fileBytes: received, fileTotalBytes: total, fileFinished: false }),
      ...(unchangedCopy ? { unchangedCopy } : {}),
    });
  } catch (error) {
    if (options.signal?.aborted) throw error;
    throw new Error(`${name}: ${describeError(error)}`, { cause: error });
  }
  const fileName = path.basename(written.path);
  options.report({ file: fileName, fileBytes: written.bytes, fileTotalBytes: written.bytes, fileFinished: true, fileUnchanged: written.unchanged });
  return written;
}

/**
 * Shows a video's download on its board row. A terminal is redrawn with the bytes of the current
 * file; a log gets a line per finished file only, not one per chunk.
 */
export function showDownloadOn(board: ProgressBoard, id: string, live: boolean): (progress: VideoDownloadProgress) => void {
  return (progress) => {
    if (!live && !progress.fileFinished) return;
    const fileFraction = progress.fileTotalBytes ? Math.min(1, progress.fileBytes / progress.fileTotalBytes) : 0;
    const done = progress.filesDone + (progress.fileFinished ? 1 : fileFraction);
    const ofTotal = progress.fileTotalBytes === null ? '' : ` of ${formatBytes(progress.fileTotalBytes)}`;
    const detail = progress.fileFinished
      ? `${progress.file} ${formatBytes(progress.fileBytes)}${progress.fileUnchanged ? ', up to date' : ''}`
      : `${progress.file} ${formatBytes(progress.fileBytes)}${ofTotal}`;
    board.report(id, { status: 'downloading', progress: progress.fileCount ? (100 * done) / progress.fileCount : 100, detail });
  };
}

/** `3 files, 1.2 MB`. */
export function describeSaved(saved: SavedVideo): string {
  const fetched = saved.unchangedFiles ? `, ${saved.unchangedFiles} already up to date` : '';
  const files = `${saved.files.length} file${saved.files.length === 1 ? '' : 's'}, ${formatBytes(saved.bytes)}${fetched}`;
  return saved.unrenderedClips ? `${files} (${saved.unrenderedClips} clip${saved.unrenderedClips === 1 ? '' : 's'} not rendered: see video.json)` : files;
}

/** The row's last state once a video's results are on disk. */
export function showSavedOn(board: ProgressBoard, rowId: string, saved: SavedVideo): void {
  board.report(rowId, { status: 'downloaded', progress: 100, detail: describeSaved(saved) });
}
