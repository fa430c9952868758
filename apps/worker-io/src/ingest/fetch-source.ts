import { constants as fsConstants, createWriteStream } from 'node:fs';
import { type FileHandle, open, readlink, realpath, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  checkUrl,
  discardPart,
  EgressRefusedError,
  egressAgents,
  localSourceRefusal,
  partFileFor,
  removeOtherParts,
  PermanentJobError,
  redirectGuard,
  SNIFF_BYTES,
  sniffContainer,
  type EgressPolicy,
  type IngestResult,
  type LocalStorage,
  type VideoSource,
  videoSourceKey,
} from '@clipline/shared';
import { got, HTTPError, MaxRedirectsError, RequestError, TimeoutError } from 'got';

export interface FetchSettings {
  storage: LocalStorage;
  maxBytes: number;
  fileRoots: readonly string[] | 'any';
  /** Let downloads reach loopback and private addresses (ALLOW_PRIVATE_SOURCES). */
  allowPrivateHosts: boolean;
  /** Private addresses downloads may reach anyway (see {@link EgressPolicy}). @defaultValue [] */
  trustedAddresses?: readonly string[];
  downloadTimeoutMs: number;
  /** Milliseconds a download may go without receiving a byte before it is given up (and retried). @defaultValue 60000 */
  idleTimeoutMs?: number;
}

const IDLE_TIMEOUT_MS = 60_000;

/** A source URL as errors and logs name it: its query (a signed URL's token, often) left out. */
function shownUrl(url: URL): string {
  return `${url.origin}${url.pathname}${url.search ? '?…' : ''}`;
}

export interface FetchHooks {
  signal?: AbortSignal;
  onProgress?: (fraction: number) => void | Promise<void>;
}

const ACCEPTED_CONTENT_TYPES = /^(video\/|application\/(octet-stream|mp4|x-matroska|ogg|x-mpegurl|vnd\.apple\.mpegurl)|binary\/octet-stream)/i;

async function readHeadOf(handle: FileHandle): Promise<Uint8Array> {
  const buffer = Buffer.alloc(SNIFF_BYTES);
  const { bytesRead } = await handle.read(buffer, 0, SNIFF_BYTES, 0);
  return buffer.subarray(0, bytesRead);
}

async function readHead(file: string): Promise<Uint8Array> {
  const handle = await open(file, 'r');
  try {
    return await readHeadOf(handle);
  } finally {
    await handle.close();
  }
}

function checkSniff(head: Uint8Array): string {
  const sniffed = sniffContainer(head);
  if (!sniffed.video) throw new PermanentJobError(sniffed.reason);
  return sniffed.container;
}

function sizeLimitText(bytes: number): string {
  return bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(1)} GiB` : `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
}

/** Reports a copy's progress at most every 250 ms; a report that fails (the database away) is dropped. */
function progressReporter(hooks: FetchHooks, size: () => number): (copied: number) => void {
  let lastReport = 0;
  return (copied) => {
    const now = Date.now();
    if (size() > 0 && now - lastReport > 250) {
      lastReport = now;
      void Promise.resolve(hooks.onProgress?.(copied / size())).catch(() => {});
    }
  };
}

/**
 * The last report, once the file is in place: best effort like the others, so a database or
 * Redis blink at that moment does not throw away a finished download (and fetch it again).
 */
async function reportDone(hooks: FetchHooks): Promise<void> {
  await Promise.resolve(hooks.onProgress?.(1)).catch(() => {});
}

/**
 * Streams `from` into a `.part` file of this run next to `target` and returns its path (see
 * `placeFile`); on any failure, the cancellation or shutdown the signal carries included, the
 * `.part` file is removed.
 */
async function copyInto(from: NodeJS.ReadableStream, target: string, limit: Transform, hooks: FetchHooks): Promise<string> {
  const partial = partFileFor(target);
  const writer = createWriteStream(partial);
  try {
    await pipeline(from, limit, writer, ...(hooks.signal ? [{ signal: hooks.signal }] : []));
    return partial;
  } catch (error) {
    await discardPart(partial, writer);
    throw error;
  }
}

/** Checks a whole `.part` file and renames it into place; a refused or failed one is removed. */
async function placeFile<T>(partial: string, target: string, check: () => Promise<T>): Promise<T> {
  try {
    const checked = await check();
    await rename(partial, target);
    return checked;
  } catch (error) {
    await rm(partial, { force: true });
    throw error;
  }
}

/** A local file's failure to be found or read, as a permanent error naming it; anything else as it is. */
function localFileError(error: unknown, file: string): unknown {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return new PermanentJobError(`source file does not exist: ${file}`);
  if (code === 'EACCES' || code === 'EPERM') return new PermanentJobError(`source file is not readable: ${file}`);
  return error;
}

/**
 * Where a local source really is, its links followed: the allowed directories are judged there,
 * so a link inside one cannot lead out of it. Nothing is read from where the storage folder keeps
 * the videos' files (every tenant's sources and clips), whatever FILE_SOURCE_ROOTS allows.
 */
async function localSourcePath(settings: FetchSettings, file: string): Promise<string> {
  const real = await realpath(file).catch((error: unknown) => {
    throw localFileError(error, file);
  });
  // The roots where they really are too: a root that is itself a link holds what is under its target.
  const roots = settings.fileRoots === 'any' ? 'any' : await Promise.all(settings.fileRoots.map((root) => realpath(root).catch(() => root)));
  const storageRoot = await realpath(settings.storage.root).catch(() => settings.storage.root);
  const refusal = localSourceRefusal(real, { roots, storageRoot, named: file });
  if (refusal) throw new PermanentJobError(refusal);
  return real;
}

/**
 * Opens the checked path once, and everything after reads through that handle: a folder on the
 * way swapped for a link after the check (by someone who can write in a FILE_SOURCE_ROOTS
 * folder) would otherwise lead a later open out of the roots. The last part is not followed
 * (O_NOFOLLOW), the opened file's own path must be the checked one (Linux names it in
 * /proc/self/fd), and a FIFO put there does not block the open (O_NONBLOCK; it is then refused as
 * no regular file).
 */
export async function openCheckedFile(file: string, named: string): Promise<FileHandle> {
  let handle: FileHandle;
  try {
    handle = await open(file, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOOP') throw new PermanentJobError(`source file became a link while it was being checked: ${named}`);
    throw localFileError(error, named);
  }
  const opened = await readlink(`/proc/self/fd/${handle.fd}`).catch(() => undefined);
  if (opened !== undefined && opened !== file) {
    await handle.close();
    throw new PermanentJobError(`source file moved while it was being checked: ${named}`);
  }
  return handle;
}

async function fetchLocalFile(settings: FetchSettings, videoId: string, named: string, hooks: FetchHooks): Promise<IngestResult> {
  const file = await localSourcePath(settings, named);
  const handle = await openCheckedFile(file, named);
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new PermanentJobError(`source is not a regular file: ${file}`);
    if (info.size > settings.maxBytes) {
      throw new PermanentJobError(`source is ${sizeLimitText(info.size)}, more than the ${sizeLimitText(settings.maxBytes)} limit (MAX_SOURCE_BYTES)`);
    }
    const container = checkSniff(await readHeadOf(handle));
    const key = videoSourceKey(videoId, path.extname(file));
    const target = await settings.storage.prepare(key);
    // Streamed rather than copyFile: a copy of gigabytes stops on cancellation and shutdown, and reports progress.
    let copied = 0;
    const report = progressReporter(hooks, () => info.size);
    const counted = byteLimit(settings.maxBytes, (total) => {
      copied = total;
      report(total);
    });
    // Before the source stream exists: an error it emits must find the pipeline listening.
    await removeOtherParts(target);
    const partial = await copyInto(handle.createReadStream({ highWaterMark: 1024 * 1024, start: 0, autoClose: false }), target, counted, hooks);
    await placeFile(partial, target, async () => undefined);
    if (copied > 0) await reportDone(hooks);
    return { storageKey: key, sizeBytes: copied, container };
  } finally {
    await handle.close().catch(() => {});
  }
}

/** Counts bytes through a stream, failing once more than `limit` pass. */
function byteLimit(limit: number, onBytes: (total: number) => void): Transform {
  let total = 0;
  // The first bytes are judged as soon as they are in: what is not a video is not read to its end.
  let head: Buffer[] | undefined = [];
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      total += chunk.length;
      if (total > limit) {
        callback(new PermanentJobError(`download exceeds the ${sizeLimitText(limit)} limit (MAX_SOURCE_BYTES)`));
        return;
      }
      if (head) {
        head.push(chunk);
        if (total >= SNIFF_BYTES) {
          const start = Buffer.concat(head).subarray(0, SNIFF_BYTES);
          head = undefined;
          try {
            checkSniff(start);
          } catch (error) {
            callback(error as Error);
            return;
          }
        }
      }
      onBytes(total);
      callback(null, chunk);
    },
  });
}

/** The download stream: no retries of its own (the job's attempts retry), every redirect re-checked. */
function sourceDownload(settings: FetchSettings, url: URL, egress: EgressPolicy, signal: AbortSignal | undefined) {
  return got.stream(url, {
    timeout: {
      lookup: 5000,
      connect: 10_000,
      secureConnect: 10_000,
      response: 30_000,
      // A server that stops sending is given up on long before the whole download's limit.
      socket: settings.idleTimeoutMs ?? IDLE_TIMEOUT_MS,
      request: settings.downloadTimeoutMs,
    },
    retry: { limit: 0 },
    followRedirect: true,
    maxRedirects: 5,
    agent: egressAgents(egress),
    hooks: { beforeRedirect: [redirectGuard(egress)] },
    headers: { 'user-agent': 'clipline-ingest/0.1', accept: 'video/*, application/octet-stream;q=0.9, */*;q=0.1' },
    ...(signal ? { signal } : {}),
  });
}

async function fetchHttp(settings: FetchSettings, videoId: string, url: URL, hooks: FetchHooks): Promise<IngestResult> {
  const egress: EgressPolicy = { allowPrivate: settings.allowPrivateHosts, trustedAddresses: settings.trustedAddresses ?? [] };
  // The source URL is checked here, names when their socket opens, and every redirect target
  // before it is followed: an IP-literal target would otherwise be connected to unchecked.
  try {
    checkUrl(url, egress);
  } catch (error) {
    throw new PermanentJobError(`download of ${shownUrl(url)} refused: ${(error as Error).message}`);
  }
  const key = videoSourceKey(videoId, path.extname(url.pathname));
  const target = await settings.storage.prepare(key);
  await removeOtherParts(target);
  const stream = sourceDownload(settings, url, egress, hooks.signal);
  let expected = 0;
  stream.once('response', (response: { headers: Record<string, string | undefined> }) => {
    const type = response.headers['content-type'];
    if (type && !ACCEPTED_CONTENT_TYPES.test(type)) {
      stream.destroy(new PermanentJobError(`the server sent "${type.split(';')[0]}", not a video`));
      return;
    }
    expected = Number(response.headers['content-length'] ?? 0);
    if (expected > settings.maxBytes) {
      stream.destroy(new PermanentJobError(`source is ${sizeLimitText(expected)}, more than the ${sizeLimitText(settings.maxBytes)} limit (MAX_SOURCE_BYTES)`));
    }
  });
  let received = 0;
  const report = progressReporter(hooks, () => expected);
  const counted = byteLimit(settings.maxBytes, (total) => {
    received = total;
    report(total);
  });
  let partial: string;
  try {
    partial = await copyInto(stream, target, counted, hooks);
  } catch (error) {
    throw classifyDownloadError(error, url, settings.idleTimeoutMs ?? IDLE_TIMEOUT_MS);
  }
  const container = await placeFile(partial, target, async () => checkSniff(await readHead(partial)));
  // Reports are throttled, so the last chunks usually go unreported: the source is whole now.
  if (expected > 0) await reportDone(hooks);
  return { storageKey: key, sizeBytes: received, container };
}

/** 4xx answers (but 408/429) and refused addresses are permanent; network trouble and 5xx are retried. */
function classifyDownloadError(error: unknown, url: URL, idleTimeoutMs: number): Error {
  const where = shownUrl(url);
  if (error instanceof PermanentJobError) return error;
  // got wraps an error passed to stream.destroy() (our own refusals) in a RequestError.
  const wrapped = (error as { cause?: unknown }).cause;
  if (wrapped instanceof PermanentJobError) return wrapped;
  if (error instanceof HTTPError) {
    const status = error.response.statusCode;
    const message = `download of ${where} failed: HTTP ${status}`;
    return status >= 400 && status < 500 && status !== 408 && status !== 429 ? new PermanentJobError(message) : new Error(message);
  }
  const cause = error instanceof RequestError ? (error.cause ?? error) : error;
  // got refuses a redirect to another scheme (or a unix socket) itself, before the redirect hook
  // runs, and ends a redirect loop: the same server would answer the same way every time.
  if ((cause as NodeJS.ErrnoException).code === 'ERR_UNSUPPORTED_PROTOCOL' || /^Cannot redirect to UNIX socket/.test((cause as Error).message ?? ''))
    return new PermanentJobError(`download of ${where} refused: ${(cause as Error).message}`);
  if (error instanceof MaxRedirectsError) return new PermanentJobError(`download of ${where} failed: ${error.message}`);
  if (cause instanceof EgressRefusedError) return new PermanentJobError(`download of ${where} refused: ${cause.message}`);
  if (error instanceof RequestError && error.code === 'ENOTFOUND') return new PermanentJobError(`download of ${where} failed: host ${url.hostname} not found`);
  if (error instanceof TimeoutError && error.event === 'socket')
    return new Error(`download of ${where} failed: the server sent nothing for ${idleTimeoutMs / 1000} s`, { cause: error });
  return new Error(`download of ${where} failed: ${(error as Error).message}`, { cause: error });
}

/** Copies or downloads a source into storage after checking that it looks like a video. */
export async function fetchSource(settings: FetchSettings, videoId: string, source: VideoSource, hooks: FetchHooks = {}): Promise<IngestResult> {
  return source.kind === 'file' ? fetchLocalFile(settings, videoId, source.path, hooks) : fetchHttp(settings, videoId, source.url, hooks);
}
