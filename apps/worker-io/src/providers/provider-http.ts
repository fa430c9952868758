/**
 * The one module that talks HTTP (got) for the provider clients: keep-alive agents, timeouts,
 * retries of idempotent GETs only, and the mapping of every failure to a {@link ProviderError}.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { rename } from 'node:fs/promises';
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { discardPart, partFileFor, removeOtherParts, type SpanOptions, withSpan } from '@clipline/shared';
import got, { RequestError, type Got, type Method, type OptionsOfBufferResponseBody, type Response } from 'got';
import {
  ProviderError,
  ProviderInvalidResponseError,
  ProviderPermanentError,
  ProviderRateLimitedError,
  ProviderTransientError,
  retryAfterMs,
} from './provider-errors.js';
import { API_KEY_VARIABLES, type ProviderName } from './provider-names.js';

/** Statuses worth another try of an idempotent request; 429 is not among them (it pauses the provider instead). */
const RETRIABLE_STATUSES = [408, 500, 502, 503, 504, 521, 522, 524];
/** Wait after a 429 that came without a usable Retry-After. */
const DEFAULT_RATE_LIMIT_PAUSE_MS = 1000;
const MAX_ANSWER_BYTES = 64 * 1024 ** 2;
/** The longest a 429 may pause a provider's queue for; a longer Retry-After is asked again after it. */
const MAX_RATE_LIMIT_PAUSE_MS = 5 * 60_000;

/** The pause a 429 asks for: its Retry-After up to the longest allowed, the default when it names none, or none ahead. */
function rateLimitPause(header: string | string[] | undefined): number {
  const asked = retryAfterMs(header);
  return asked !== undefined && asked > 0 ? Math.min(asked, MAX_RATE_LIMIT_PAUSE_MS) : DEFAULT_RATE_LIMIT_PAUSE_MS;
}

/** A 429 that waiting does not clear: OpenAI's used-up quota (`insufficient_quota`). */
function quotaExhausted(body: Buffer): boolean {
  try {
    const error = (JSON.parse(body.toString('utf8').slice(0, 2000)) as { error?: { code?: unknown; type?: unknown } }).error;
    return error?.code === 'insufficient_quota' || error?.type === 'insufficient_quota';
  } catch {
    return false;
  }
}

/**
 * The limit a Google API's 403 names (`error.errors[].reason`): the YouTube Data API answers its
 * rate limits and its daily quota with 403, not 429. Undefined for any other 403 (a refused key).
 */
function googleLimit(body: Buffer): 'rate' | 'quota' | undefined {
  try {
    const errors = (JSON.parse(body.toString('utf8').slice(0, 4000)) as { error?: { errors?: { reason?: unknown }[] } }).error?.errors;
    const reasons = new Set((Array.isArray(errors) ? errors : []).map((error) => error?.reason));
    if (reasons.has('quotaExceeded') || reasons.has('dailyLimitExceeded')) return 'quota';
    if (reasons.has('rateLimitExceeded') || reasons.has('userRateLimitExceeded')) return 'rate';
  } catch {
    // not JSON: not a limit
  }
  return undefined;
}

export interface ProviderHttpOptions {
  provider: ProviderName;
  baseUrl: string;
  /** Milliseconds one request (all of it: connect, upload, answer, body) may take. */
  timeoutMs: number;
  /** Headers sent with every request (the credentials). */
  headers: Record<string, string>;
  /** Retries of GET requests; other methods are never retried here. @defaultValue 0 */
  getRetries?: number;
  /** First retry delay; doubles per retry, plus up to 50% jitter. @defaultValue 250 */
  getRetryDelayMs?: number;
  /** The largest answer read into memory; files are streamed by `download` under their own limit. @defaultValue 64 MiB */
  maxAnswerBytes?: number;
}

export interface ProviderRequest {
  method: 'GET' | 'POST';
  /** Relative to the base URL, without a leading slash (`chat/completions`). */
  path: string;
  searchParams?: Record<string, string>;
  headers?: Record<string, string>;
  json?: unknown;
  /** A multipart body; file parts may be file-backed blobs (`fs.openAsBlob`), streamed as sent. */
  form?: FormData;
  signal?: AbortSignal;
}

export interface ProviderAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface DownloadCheck {
  /** Largest body accepted, in bytes. */
  maxBytes: number;
  /** Looks at the content type and the first bytes; returns why they are wrong, or undefined. */
  inspect(contentType: string | undefined, head: Buffer): string | undefined;
}

/** What is read of an error answer to a download: its message is at the start, the rest is not held. */
const ERROR_BODY_BYTES = 64 * 1024;

async function errorBodyHead(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    chunks.push(chunk);
    size += chunk.length;
    if (size >= ERROR_BODY_BYTES) break;
  }
  return Buffer.concat(chunks).subarray(0, ERROR_BODY_BYTES);
}

/** The message a provider put in its error body, whatever its envelope looks like. */
function upstreamMessage(body: Buffer): string | undefined {
  const text = body.toString('utf8').slice(0, 2000);
  try {
    const parsed = JSON.parse(text) as Record<string, unknown>;
    const error = parsed.error as Record<string, unknown> | undefined;
    const detail = parsed.detail as Record<string, unknown> | { msg?: string; loc?: unknown[] }[] | undefined;
    if (typeof error?.message === 'string') return error.message;
    if (typeof parsed.message === 'string') return parsed.message;
    if (Array.isArray(detail)) return detail.map((item) => `${(item.loc ?? []).join('.')}: ${item.msg ?? ''}`).join('; ');
    if (typeof detail?.message === 'string') return detail.message;
  } catch {
    // not JSON: fall through to the raw text
  }
  return text.trim() || undefined;
}

/** The span around one provider call; the HTTP client span (and its retries) sit under it. */
function providerSpan(provider: string, request: ProviderRequest): SpanOptions {
  return { attributes: { 'clipline.provider': provider, 'http.request.method': request.method, 'url.path': `/${request.path}` } };
}

export class ProviderHttp {
  private readonly client: Got;
  private readonly agents = { http: new http.Agent({ keepAlive: true, maxSockets: 512 }), https: new https.Agent({ keepAlive: true, maxSockets: 512 }) };
  private readonly base: string;

  constructor(private readonly options: ProviderHttpOptions) {
    this.base = options.baseUrl.endsWith('/') ? options.baseUrl : `${options.baseUrl}/`;
    const baseDelay = options.getRetryDelayMs ?? 250;
    this.client = got.extend({
      agent: this.agents,
      // got would forward the providers' own key headers (xi-api-key, x-goog-api-key) to wherever
      // a redirect points: none is followed, and the failure names where it pointed.
      followRedirect: false,
      timeout: { request: options.timeoutMs },
      throwHttpErrors: false,
      retry: {
        limit: options.getRetries ?? 0,
        methods: ['GET'],
        statusCodes: RETRIABLE_STATUSES,
        // got computes 0 when it will not retry (a POST, a 4xx); keep that. A 5xx that says when
        // to come back (Retry-After) is waited for at least that long, or, when that is longer
        // than a request may take, left to the job's own retry; otherwise our own backoff.
        calculateDelay: ({ attemptCount, computedValue, error }) => {
          if (computedValue === 0) return 0;
          const backoff = Math.round(baseDelay * 2 ** (attemptCount - 1) * (1 + Math.random() * 0.5));
          const asked = retryAfterMs(error.response?.headers['retry-after']);
          if (asked === undefined || asked <= 0) return backoff;
          return asked > options.timeoutMs ? 0 : Math.max(backoff, asked);
        },
      },
      headers: { 'user-agent': 'clipline-worker-io', ...options.headers },
    });
  }

  private url(path: string): URL {
    return new URL(path, this.base);
  }

  private gotOptions(request: ProviderRequest): OptionsOfBufferResponseBody {
    return {
      method: request.method as Method,
      searchParams: request.searchParams,
      headers: request.headers,
      responseType: 'buffer',
      ...(request.json !== undefined ? { json: request.json } : {}),
      ...(request.form ? { body: request.form } : {}),
      ...(request.signal ? { signal: request.signal } : {}),
    };
  }

  /** Sends a request and resolves to its answer when it is 2xx or 304; anything else throws a {@link ProviderError}. */
  async request(request: ProviderRequest): Promise<ProviderAnswer> {
    return withSpan(`provider ${this.options.provider}`, providerSpan(this.options.provider, request), async (span) => {
      const answer = await this.send(request);
      span.setAttribute('http.response.status_code', answer.status);
      return answer;
    });
  }

  private async send(request: ProviderRequest): Promise<ProviderAnswer> {
    let response: Response<Buffer>;
    let oversized = false;
    const limit = this.options.maxAnswerBytes ?? MAX_ANSWER_BYTES;
    try {
      const call = this.client(this.url(request.path), this.gotOptions(request));
      // An answer is held whole in memory (and copied by its parse): one past the limit, or
      // announced past it, is cut off instead of filling the worker's heap.
      call.on('downloadProgress', ({ transferred, total }) => {
        if (transferred > limit || (total ?? 0) > limit) {
          oversized = true;
          call.cancel();
        }
      });
      response = await call;
    } catch (thrown) {
      if (oversized && !request.signal?.aborted) {
        const where = `${this.options.provider} ${request.method} /${request.path}`;
        throw new ProviderInvalidResponseError(this.options.provider, `${where} sent an answer of more than ${limit} bytes`);
      }
      throw this.failure(thrown, request);
    }
    if ((response.statusCode >= 200 && response.statusCode < 300) || response.statusCode === 304) {
      return { status: response.statusCode, headers: response.headers, body: response.body };
    }
    throw this.statusFailure(response.statusCode, response.headers, response.body, request);
  }

  /**
   * Streams a successful answer into `destination` (written to a temporary name first, so a
   * failed download never leaves a partial file under the real name).
   */
  async download(request: ProviderRequest, destination: string, check: DownloadCheck): Promise<{ bytes: number; contentType: string | undefined }> {
    return withSpan(`provider ${this.options.provider} download`, providerSpan(this.options.provider, request), async (span) => {
      const saved = await this.save(request, destination, check);
      span.setAttribute('clipline.download.bytes', saved.bytes);
      return saved;
    });
  }

  private async save(request: ProviderRequest, destination: string, check: DownloadCheck): Promise<{ bytes: number; contentType: string | undefined }> {
    await removeOtherParts(destination);
    const stream = this.client.stream(this.url(request.path), { ...this.gotOptions(request), responseType: undefined, isStream: true, retry: { limit: 0 } });
    const partial = partFileFor(destination);
    let bytes = 0;
    let contentType: string | undefined;
    let head: Buffer | undefined;
    let writer: WriteStream | undefined;
    const provider = this.options.provider;
    const inspector = new Transform({
      transform(chunk: Buffer, _encoding, callback: TransformCallback) {
        bytes += chunk.length;
        if (bytes > check.maxBytes) return callback(new ProviderInvalidResponseError(provider, `${provider} sent more than ${check.maxBytes} bytes`));
        if (!head) {
          head = chunk;
          const problem = check.inspect(contentType, chunk);
          if (problem) return callback(new ProviderInvalidResponseError(provider, `${provider} answered something that is not what was asked for: ${problem}`));
        }
        callback(null, chunk);
      },
    });
    try {
      const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
        stream.once('response', resolve);
        stream.once('error', reject);
      });
      if (response.statusCode === undefined || response.statusCode < 200 || response.statusCode >= 300) {
        throw this.statusFailure(response.statusCode ?? 0, response.headers, await errorBodyHead(stream), request);
      }
      contentType = response.headers['content-type'];
      writer = createWriteStream(partial);
      await pipeline(stream, inspector, writer);
      if (bytes === 0) throw new ProviderInvalidResponseError(provider, `${provider} answered 200 with an empty body`);
      await rename(partial, destination);
      return { bytes, contentType };
    } catch (thrown) {
      stream.destroy();
      await discardPart(partial, writer);
      throw thrown instanceof ProviderError ? thrown : this.failure(thrown, request);
    }
  }

  private statusFailure(status: number, headers: IncomingHttpHeaders, body: Buffer, request: ProviderRequest): ProviderError {
    const provider = this.options.provider;
    const said = upstreamMessage(body);
    const what = `${provider} ${request.method} /${request.path} answered ${status}${said ? `: ${said}` : ''}`;
    if (status === 429) {
      if (quotaExhausted(body)) return new ProviderPermanentError(provider, `${what} (the account's quota is used up: check its plan and billing)`, { status });
      return new ProviderRateLimitedError(provider, rateLimitPause(headers['retry-after']), 'upstream', { status });
    }
    if (status === 408 || status >= 500) return new ProviderTransientError(provider, what, { status });
    const limit = status === 403 ? googleLimit(body) : undefined;
    if (limit) {
      // A used-up daily quota comes back at midnight Pacific time: the provider is asked again at
      // the longest pause, until the jobs' outage horizon gives up on it with this reason.
      const pauseMs = limit === 'quota' ? MAX_RATE_LIMIT_PAUSE_MS : rateLimitPause(headers['retry-after']);
      return new ProviderRateLimitedError(provider, pauseMs, 'upstream', { status, detail: what });
    }
    if (status === 401 || status === 403) return new ProviderPermanentError(provider, `${what} (check ${API_KEY_VARIABLES[provider]})`, { status });
    if (status >= 300 && status < 400) {
      const location = String(headers.location ?? 'nowhere').slice(0, 200);
      return new ProviderPermanentError(provider, `${what} (a redirect to ${location}, not followed: its base URL should name the API itself)`, { status });
    }
    return new ProviderPermanentError(provider, what, { status });
  }

  private failure(thrown: unknown, request: ProviderRequest): Error {
    const provider = this.options.provider;
    // A job that is being stopped keeps its own abort reason, so the runtime can tell it apart.
    if (request.signal?.aborted) return request.signal.reason instanceof Error ? request.signal.reason : new Error(String(request.signal.reason));
    if (thrown instanceof ProviderError) return thrown;
    if (thrown instanceof RequestError) {
      const where = `${provider} ${request.method} /${request.path}`;
      if (thrown.code === 'ETIMEDOUT')
        return new ProviderTransientError(provider, `${where} did not answer within ${this.options.timeoutMs} ms`, { cause: thrown });
      return new ProviderTransientError(provider, `${where} failed: ${thrown.code ?? thrown.message}`, { cause: thrown });
    }
    return thrown instanceof Error ? thrown : new Error(String(thrown));
  }

  /** Closes the keep-alive connections. */
  close(): void {
    this.agents.http.destroy();
    this.agents.https.destroy();
  }
}
