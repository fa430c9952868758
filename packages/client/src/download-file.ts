import { randomBytes } from 'node:crypto';
import { type FileHandle, open, rename, rm } from 'node:fs/promises';
import { ClipLineConnectionError, ClipLineFileError, ClipLineProtocolError } from './errors.js';
import type { HttpTransport } from './http-transport.js';

/** What the server said about a file before its body arrives. */
export interface DownloadHeaders {
  /** `Content-Type` without parameters, e.g. `image/png`; null when not sent. */
  contentType: string | null;
  /** `Content-Length`; null when not sent (the body is then taken as complete when it ends). */
  contentLength: number | null;
}

export interface DownloadOptions {
  signal?: AbortSignal;
  /** Told after every chunk written, with the bytes so far and the announced total (null when unknown). */
  onProgress?: (receivedBytes: number, totalBytes: number | null) => void;
  /** Give up when no byte of the body arrived for this long. @defaultValue the client's `timeoutMs` */
  idleTimeoutMs?: number;
}

export interface DownloadedFile {
  /** Where the file now is (the destination, as resolved from the headers). */
  path: string;
  bytes: number;
  contentType: string | null;
}

/** A file path, or a function choosing it once the headers are known (e.g. an extension from the type). */
export type DownloadDestination = string | ((headers: DownloadHeaders) => string);

function contentLengthOf(response: Response): number | null {
  const header = response.headers.get('content-length');
  if (header === null || !/^\d+$/.test(header.trim())) return null;
  return Number(header);
}

/**
 * Streams `GET <baseUrl><apiPath>` (with the client's key) into `<destination>.<random>.part`, then
 * renames it to `destination`: the final name only ever holds a whole file, and a failed or
 * interrupted download leaves nothing behind. The transport retries until the headers arrive;
 * a body that breaks off is not resumed: the call rejects and may simply be repeated.
 */
export async function downloadFile(
  transport: HttpTransport,
  apiPath: string,
  destination: DownloadDestination,
  options: DownloadOptions & { idleTimeoutMs: number },
): Promise<DownloadedFile> {
  // The key goes wherever the path points: only paths below the base URL are followed.
  if (!apiPath.startsWith('/') || apiPath.startsWith('//')) {
    throw new TypeError(`download path must be an API path starting with "/", got ${JSON.stringify(apiPath.slice(0, 200))}`);
  }
  // Our own controller, so that a stalled body can be aborted without touching the caller's signal.
  const stall = new AbortController();
  const forwardAbort = () => stall.abort(options.signal?.reason);
  if (options.signal?.aborted) forwardAbort();
  options.signal?.addEventListener('abort', forwardAbort, { once: true });
  const url = transport.url(apiPath);
  try {
    const response = await transport.open({ method: 'GET', path: apiPath, idempotent: true, signal: stall.signal }, '*/*');
    const headers: DownloadHeaders = {
      contentType: response.headers.get('content-type')?.split(';')[0]?.trim().toLowerCase() || null,
      contentLength: contentLengthOf(response),
    };
    const target = typeof destination === 'string' ? destination : destination(headers);
    // A name of its own: two downloads of one file at once never write into each other's.
    const partPath = `${target}.${randomBytes(4).toString('hex')}.part`;
    const bytes = await writeBody(response, partPath, headers.contentLength, options, stall, url);
    try {
      await rename(partPath, target);
    } catch (error) {
      await rm(partPath, { force: true });
      throw error;
    }
    return { path: target, bytes, contentType: headers.contentType };
  } catch (error) {
    // An abort from the caller is reported as the caller's reason, as every other call does.
    if (options.signal?.aborted) throw options.signal.reason;
    throw error;
  } finally {
    options.signal?.removeEventListener('abort', forwardAbort);
    // Releases the connection when the body was not read to its end (the file could not be
    // opened, the destination function threw); after a whole body it changes nothing.
    stall.abort(new Error('download over'));
  }
}

/**
 * Writes the whole chunk: a write may take only part of it (a disk filling up), and the rest is
 * written again, which then fails with the disk's own error (ENOSPC) instead of leaving a short file.
 */
async function writeAll(file: FileHandle, chunk: Uint8Array, partPath: string): Promise<void> {
  for (let offset = 0; offset < chunk.byteLength; ) {
    try {
      const { bytesWritten } = await file.write(chunk, offset, chunk.byteLength - offset);
      offset += bytesWritten;
    } catch (error) {
      throw new ClipLineFileError(partPath, error);
    }
  }
}

/** Writes the body to `partPath` and syncs it; on any failure the part file is removed. */
async function writeBody(
  response: Response,
  partPath: string,
  expectedBytes: number | null,
  options: DownloadOptions & { idleTimeoutMs: number },
  stall: AbortController,
  url: string,
): Promise<number> {
  const file = await open(partPath, 'wx');
  let received = 0;
  let idleTimer: NodeJS.Timeout | undefined;
  const armIdleTimer = () => {
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => stall.abort(new DOMException(`no data for ${options.idleTimeoutMs} ms`, 'TimeoutError')), options.idleTimeoutMs);
  };
  try {
    if (!response.body) throw new ClipLineProtocolError(`GET ${new URL(url).pathname} answered ${response.status} without a body`);
    armIdleTimer();
    try {
      for await (const chunk of response.body) {
        armIdleTimer();
        await writeAll(file, chunk, partPath);
        received += chunk.byteLength;
        options.onProgress?.(received, expectedBytes);
      }
    } catch (error) {
      if (options.signal?.aborted || error instanceof ClipLineFileError) throw error;
      throw new ClipLineConnectionError(url, stall.signal.aborted ? stall.signal.reason : error);
    }
    if (expectedBytes !== null && received !== expectedBytes) {
      throw new ClipLineProtocolError(`GET ${new URL(url).pathname} ended after ${received} of ${expectedBytes} bytes`);
    }
    // A caller that gave up after the last chunk gets no file either.
    stall.signal.throwIfAborted();
    // Synced before the rename, so the final name never points at data still in the page cache.
    await file.sync().catch((error: unknown) => {
      throw new ClipLineFileError(partPath, error);
    });
    await file.close();
    return received;
  } catch (error) {
    await file.close().catch(() => {});
    await rm(partPath, { force: true });
    throw error;
  } finally {
    clearTimeout(idleTimer);
  }
}
