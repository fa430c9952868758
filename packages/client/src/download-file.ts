import { randomBytes } from 'node:crypto';
import { type FileHandle, open, rename, rm } from 'node:fs/promises';
import { ClipLineConnectionError, ClipLineFileError, ClipLineProtocolError } from './errors.js';
import type { HttpTransport } from './http-transport.js';
import { sleep } from './sleep.js';

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
  /**
   * A copy of the file already on disk, which the server tagged `etag` when it was downloaded:
   * asked for with `If-None-Match`, so that when the server answers that it is still the current
   * file (304), nothing is transferred or written and the result names the copy.
   */
  unchangedCopy?: { path: string; bytes: number; etag: string };
}

export interface DownloadedFile {
  /** Where the file now is (the destination, as resolved from the headers; the copy when unchanged). */
  path: string;
  bytes: number;
  contentType: string | null;
  /** The server's tag of this version of the file (`ETag`), to send with the next download of it; null when it sent none. */
  etag: string | null;
  /** The server said `unchangedCopy` is the current file: nothing was written. */
  unchanged: boolean;
}

/** A file path, or a function choosing it once the headers are known (e.g. an extension from the type). */
export type DownloadDestination = string | ((headers: DownloadHeaders) => string);

function contentLengthOf(response: Response): number | null {
  const header = response.headers.get('content-length');
  if (header === null || !/^\d+$/.test(header.trim())) return null;
  return Number(header);
}

/** A body that broke off is taken up again this many times, from where it broke when the server allows. */
const MAX_RESUMES = 3;
const RESUME_DELAY_MS = 500;

/**
 * Streams `GET <baseUrl><apiPath>` (with the client's key) into `<destination>.<random>.part`,
 * then renames it to `destination`: the final name only ever holds a whole file, and a failed or
 * interrupted download leaves nothing behind. The transport retries until the headers arrive. A
 * body that breaks off is taken up again up to {@link MAX_RESUMES} times: from the byte where it
 * broke (`Range`, with `If-Range` naming the file's version) when the server offers ranges and a
 * validator, else from the start; a server that answers a range with the whole file (it changed)
 * is written from the start too.
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
  const url = transport.url(apiPath);
  let attempt = new BodyAttempt(options.signal);
  const copy = options.unchangedCopy;
  try {
    // fetch adds `Cache-Control: no-cache` to a conditional request that names none, and a server
    // (express's `sendFile` among them) then never answers 304; `max-age=0` asks as much of caches.
    const conditional = copy ? { headers: { 'if-none-match': copy.etag, 'cache-control': 'max-age=0' } } : {};
    let response = await transport.open({ method: 'GET', path: apiPath, idempotent: true, signal: attempt.signal, ...conditional }, '*/*');
    if (copy && response.status === 304) return { ...copy, contentType: null, unchanged: true };
    const headers: DownloadHeaders = {
      contentType: response.headers.get('content-type')?.split(';')[0]?.trim().toLowerCase() || null,
      contentLength: contentLengthOf(response),
    };
    let served = servedVersion(response);
    const target = typeof destination === 'string' ? destination : destination(headers);
    // A name of its own: two downloads of one file at once never write into each other's.
    const partPath = `${target}.${randomBytes(4).toString('hex')}.part`;
    const file = await open(partPath, 'wx');
    let bytes = 0;
    try {
      let from = 0;
      for (let resumes = 0; ; resumes++) {
        const written = await writeBody(response, file, partPath, { from, expectedBytes: served.length, options, stall: attempt.controller, url });
        bytes = written.bytes;
        // Complete, or broken off after its last byte (nothing left to ask for).
        if (written.complete || written.bytes === served.length) break;
        if (resumes >= MAX_RESUMES || options.signal?.aborted) throw written.error;
        from = written.bytes;
        attempt.end();
        await sleep(RESUME_DELAY_MS * 2 ** resumes, options.signal);
        attempt = new BodyAttempt(options.signal);
        const range = served.resumable && from > 0 ? { range: `bytes=${from}-`, 'if-range': served.validator! } : undefined;
        response = await transport.open(
          { method: 'GET', path: apiPath, idempotent: true, signal: attempt.signal, ...(range ? { headers: range } : {}) },
          '*/*',
        );
        from = resumedAt(response, from);
        if (from === 0) {
          // The whole file again (no range offered, or it changed): its own length and version count now.
          served = servedVersion(response);
          await file.truncate(0);
        }
      }
      // Synced before the rename, so the final name never points at data still in the page cache.
      await file.sync().catch((error: unknown) => {
        throw new ClipLineFileError(partPath, error);
      });
      await file.close();
      await rename(partPath, target);
    } catch (error) {
      await file.close().catch(() => {});
      await rm(partPath, { force: true });
      throw error;
    }
    return { path: target, bytes, contentType: headers.contentType, etag: served.etag, unchanged: false };
  } catch (error) {
    // An abort from the caller is reported as the caller's reason, as every other call does.
    if (options.signal?.aborted) throw options.signal.reason;
    throw error;
  } finally {
    // Releases the connection when the body was not read to its end (the file could not be
    // opened, the destination function threw); after a whole body it changes nothing.
    attempt.end();
  }
}

/** The length and version of the file an answer serves, and whether a broken body can be taken up from where it broke. */
function servedVersion(response: Response): { length: number | null; validator: string | null; etag: string | null; resumable: boolean } {
  const length = contentLengthOf(response);
  const etag = response.headers.get('etag');
  const validator = etag ?? response.headers.get('last-modified');
  return { length, validator, etag, resumable: validator !== null && length !== null && /\bbytes\b/i.test(response.headers.get('accept-ranges') ?? '') };
}

/**
 * Where a taken-up body starts: `from` for a 206 whose Content-Range starts there, 0 for a whole
 * file (200: no range offered, or the file changed since). Another range is the server's error.
 */
function resumedAt(response: Response, from: number): number {
  if (response.status !== 206) return 0;
  const start = /^bytes (\d+)-/.exec(response.headers.get('content-range') ?? '')?.[1];
  if (Number(start) !== from)
    throw new ClipLineProtocolError(`asked for the bytes from ${from}, the server sent ${response.headers.get('content-range') ?? 'no Content-Range'}`);
  return from;
}

/** One request's controller, following the caller's signal, so a stalled body can be aborted without touching it. */
class BodyAttempt {
  readonly controller = new AbortController();
  private readonly forwardAbort = () => this.controller.abort(this.callerSignal?.reason);

  constructor(private readonly callerSignal: AbortSignal | undefined) {
    if (callerSignal?.aborted) this.forwardAbort();
    callerSignal?.addEventListener('abort', this.forwardAbort, { once: true });
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  end(): void {
    this.callerSignal?.removeEventListener('abort', this.forwardAbort);
    this.controller.abort(new Error('download over'));
  }
}

/**
 * Writes the whole chunk at `position`: a write may take only part of it (a disk filling up),
 * and the rest is written again, which then fails with the disk's own error (ENOSPC) instead of
 * leaving a short file.
 */
async function writeAll(file: FileHandle, chunk: Uint8Array, position: number, partPath: string): Promise<void> {
  for (let offset = 0; offset < chunk.byteLength; ) {
    try {
      const { bytesWritten } = await file.write(chunk, offset, chunk.byteLength - offset, position + offset);
      offset += bytesWritten;
    } catch (error) {
      throw new ClipLineFileError(partPath, error);
    }
  }
}

type WrittenBody = { complete: true; bytes: number } | { complete: false; bytes: number; error: ClipLineConnectionError };

/**
 * Writes the body to `file` from byte `from`. Complete when it ended at the announced length (or
 * anywhere, with none announced); a connection that broke or stalled on the way gives the bytes
 * written so far, to be taken up from there. Anything else (the disk, a body longer or shorter
 * than announced, the caller's abort) throws.
 */
async function writeBody(
  response: Response,
  file: FileHandle,
  partPath: string,
  {
    from,
    expectedBytes,
    options,
    stall,
    url,
  }: { from: number; expectedBytes: number | null; options: DownloadOptions & { idleTimeoutMs: number }; stall: AbortController; url: string },
): Promise<WrittenBody> {
  let received = from;
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
        await writeAll(file, chunk, received, partPath);
        received += chunk.byteLength;
        options.onProgress?.(received, expectedBytes);
      }
    } catch (error) {
      if (options.signal?.aborted || error instanceof ClipLineFileError) throw error;
      const cause = stall.signal.aborted ? stall.signal.reason : error;
      return { complete: false, bytes: received, error: new ClipLineConnectionError(url, cause, { received, expected: expectedBytes }) };
    }
    if (expectedBytes !== null && received !== expectedBytes) {
      throw new ClipLineProtocolError(`GET ${new URL(url).pathname} ended after ${received} of ${expectedBytes} bytes`);
    }
    // A caller that gave up after the last chunk gets no file either.
    stall.signal.throwIfAborted();
    return { complete: true, bytes: received };
  } finally {
    clearTimeout(idleTimer);
  }
}
