import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';

/** An answer before it is sent; faults decide how (and whether) it goes out. */
export interface SimReply {
  status: number;
  headers: Record<string, string>;
  /** A stream must come with its own `content-length` header when the length is known. */
  body: Buffer | Readable | undefined;
}

export function jsonReply(status: number, value: unknown, headers: Record<string, string> = {}): SimReply {
  return { status, headers: { 'content-type': 'application/json; charset=utf-8', ...headers }, body: Buffer.from(JSON.stringify(value)) };
}

export function bytesReply(status: number, body: Buffer, contentType: string, headers: Record<string, string> = {}): SimReply {
  return { status, headers: { 'content-type': contentType, ...headers }, body };
}

export class BodyTooLargeError extends Error {
  override name = 'BodyTooLargeError';
  constructor(
    readonly limitBytes: number,
    readonly receivedBytes: number,
  ) {
    super(`request body exceeds ${limitBytes} bytes`);
  }
}

/** Reads a request body into memory, refusing more than `limitBytes`. */
export async function readBody(req: IncomingMessage, limitBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limitBytes) {
    req.resume();
    throw new BodyTooLargeError(limitBytes, declared);
  }
  const chunks: Buffer[] = [];
  let received = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    received += chunk.length;
    if (received > limitBytes) {
      req.resume();
      throw new BodyTooLargeError(limitBytes, received);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

const THROTTLE_TICK_MS = 50;

/** Re-emits a body at roughly `bytesPerSecond`, in slices every 50 ms. */
async function* throttled(source: AsyncIterable<Buffer>, bytesPerSecond: number): AsyncGenerator<Buffer> {
  const sliceBytes = Math.max(1, Math.round((bytesPerSecond * THROTTLE_TICK_MS) / 1000));
  for await (const chunk of source) {
    for (let offset = 0; offset < chunk.length; offset += sliceBytes) {
      yield chunk.subarray(offset, offset + sliceBytes);
      await sleep(THROTTLE_TICK_MS);
    }
  }
}

/**
 * Writes a reply, throttled when `bytesPerSecond` is set. Resolves to true once the whole body
 * went out, false when the client went away first.
 */
export async function sendReply(res: ServerResponse, reply: SimReply, bytesPerSecond: number | null): Promise<boolean> {
  const headers = { ...reply.headers };
  if (Buffer.isBuffer(reply.body)) headers['content-length'] = String(reply.body.length);
  res.writeHead(reply.status, headers);
  if (reply.body === undefined || res.req.method === 'HEAD') {
    if (reply.body instanceof Readable) reply.body.destroy();
    res.end();
    return true;
  }
  if (bytesPerSecond === null && Buffer.isBuffer(reply.body)) {
    res.end(reply.body);
    return true;
  }
  const source = Buffer.isBuffer(reply.body) ? Readable.from([reply.body]) : reply.body;
  try {
    await pipeline(bytesPerSecond === null ? source : Readable.from(throttled(source, bytesPerSecond)), res);
    return true;
  } catch {
    return false;
  }
}
