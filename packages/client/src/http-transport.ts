import { ClipLineApiError, ClipLineConnectionError, ClipLineProtocolError } from './errors.js';
import { isRetryableStatus, parseRetryAfter, retryDelay, type RetryPolicy } from './retry-policy.js';
import { sleep } from './sleep.js';
import type { Problem } from './types.js';

/** Reported before each retry, e.g. to tell a user why a command pauses. */
export interface RetryNotice {
  method: string;
  url: string;
  /** 1 for the first retry. */
  retry: number;
  delayMs: number;
  /** What failed: `503 Service Unavailable`, `ECONNREFUSED`, … */
  reason: string;
}

export interface TransportSettings {
  /** Without a trailing slash; may carry a path prefix. */
  baseUrl: string;
  apiKey: string;
  fetch: typeof globalThis.fetch;
  retry: RetryPolicy;
  /** Per attempt: until the whole body has arrived, or for streams until the headers have. */
  timeoutMs: number;
  headers: Record<string, string>;
  onRetry?: (notice: RetryNotice) => void;
}

export interface ApiRequest {
  method: 'GET' | 'POST' | 'DELETE';
  /** Path below the base URL, already percent-encoded. */
  path: string;
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  headers?: Record<string, string>;
  /** Sent as `Idempotency-Key`; it also makes a non-idempotent request safe to retry. */
  idempotencyKey?: string;
  /** Whether repeating the request has no further effect (GET, DELETE). */
  idempotent: boolean;
  signal?: AbortSignal;
  /** Told before each retry of this request (after the client-wide `onRetry`). */
  onRetry?: () => void;
}

/**
 * An HTML error page (a proxy's, a load balancer's) described by its title or first heading
 * instead of its markup; undefined for a body that is not HTML.
 */
function htmlPageSummary(text: string, status: number): string | undefined {
  if (!/^\s*</.test(text) || !/<\/[a-z][a-z0-9]*\s*>/i.test(text)) return undefined;
  const heading = (/<title[^>]*>([^<]*)</i.exec(text)?.[1] ?? /<h1[^>]*>([^<]*)</i.exec(text)?.[1] ?? '').replace(/\s+/g, ' ').trim();
  return `the server answered ${status} with an HTML page${heading ? ` ("${heading.slice(0, 200)}")` : ''}: a proxy in front of the API?`;
}

/** Reads an error answer as a problem, whatever the server actually sent. */
async function problemOf(response: Response): Promise<Problem> {
  const text = await response.text().catch(() => '');
  const fallbackTitle = response.statusText || `HTTP ${response.status}`;
  try {
    const body = JSON.parse(text) as Partial<Problem> | null;
    if (body && typeof body === 'object' && !Array.isArray(body)) {
      return {
        ...body,
        type: typeof body.type === 'string' ? body.type : 'about:blank',
        title: typeof body.title === 'string' ? body.title : fallbackTitle,
        status: response.status,
        detail: typeof body.detail === 'string' ? body.detail : fallbackTitle,
      };
    }
  } catch {
    // Not JSON (a proxy's HTML page, plain text): described below from the text itself.
  }
  const detail = htmlPageSummary(text, response.status) ?? text.replace(/\s+/g, ' ').trim().slice(0, 300);
  return { type: 'about:blank', title: fallbackTitle, status: response.status, detail: detail || `the server answered ${response.status} without details` };
}

function failureReason(error: unknown): string {
  if (error instanceof ClipLineApiError) return `${error.status} ${error.problem.title}`;
  return error instanceof Error ? error.message : String(error);
}

/**
 * How long a keyed request waits, in all, while the server says the first request with its key
 * is still running (409 with `Retry-After`): past the server's 60 s lease a dead first request's
 * key is taken over, so a retry then runs or replays it. These waits spend no retry: a first
 * attempt that timed out on a slow server would otherwise use the budget up on 409s and report a
 * failure for a submission the server then completes.
 */
const STILL_RUNNING_MAX_WAIT_MS = 90_000;

/** 409 + Retry-After on a keyed request: the first request with this key is still running. */
function firstStillRunning(error: unknown, request: ApiRequest): error is ClipLineApiError & { retryAfterMs: number } {
  return error instanceof ClipLineApiError && error.status === 409 && error.retryAfterMs !== undefined && request.idempotencyKey !== undefined;
}

/**
 * Sends API requests: authentication, JSON bodies, problem+json errors, per-attempt timeouts and
 * retries. A request is retried only when repeating it cannot do anything twice: it is
 * idempotent, or it carries an Idempotency-Key (which the server uses to answer a repeat with
 * the first response).
 */
export class HttpTransport {
  constructor(private readonly settings: TransportSettings) {}

  url(path: string, query?: ApiRequest['query']): string {
    const search = new URLSearchParams();
    for (const [name, value] of Object.entries(query ?? {})) if (value !== undefined) search.set(name, String(value));
    const text = search.toString();
    return `${this.settings.baseUrl}${path}${text ? `?${text}` : ''}`;
  }

  /** The answer's JSON body, after retries. */
  async json<T>(request: ApiRequest): Promise<T> {
    return this.withRetries(request, 'application/json', 'body', async (response, url) => {
      const text = await response.text();
      try {
        return JSON.parse(text) as T;
      } catch {
        throw new ClipLineProtocolError(
          `${request.method} ${new URL(url).pathname} answered ${response.status} with a body that is not JSON: ${text.slice(0, 120)}`,
        );
      }
    });
  }

  /** An open successful response whose body the caller reads (event streams, files), or the 304 of a conditional request. */
  async open(request: ApiRequest, accept: string): Promise<Response> {
    return this.withRetries(request, accept, 'headers', async (response) => response);
  }

  private async withRetries<T>(
    request: ApiRequest,
    accept: string,
    timeoutCovers: 'body' | 'headers',
    read: (response: Response, url: string) => Promise<T>,
  ): Promise<T> {
    const url = this.url(request.path, request.query);
    const repeatable = request.idempotencyKey !== undefined || request.idempotent;
    // Failures spend the retry budget; waits for a first request still running do not (below).
    let retries = 0;
    let waitedOnFirstMs = 0;
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await this.attempt(request, url, accept, timeoutCovers, read);
      } catch (error) {
        if (request.signal?.aborted) throw request.signal.reason;
        if (!repeatable) throw error;
        let delayMs: number | undefined;
        if (firstStillRunning(error, request)) {
          delayMs = retryDelay(this.settings.retry, 1, error.retryAfterMs);
          // Each wait counts at least a second, so `Retry-After: 0` cannot make it endless.
          if (delayMs !== undefined && waitedOnFirstMs + Math.max(delayMs, 1000) > STILL_RUNNING_MAX_WAIT_MS) delayMs = undefined;
          waitedOnFirstMs += Math.max(delayMs ?? 0, 1000);
        } else {
          retries += 1;
          delayMs = this.delayBeforeRetry(error, retries);
        }
        if (delayMs === undefined) throw error;
        this.settings.onRetry?.({ method: request.method, url, retry: attempt, delayMs, reason: failureReason(error) });
        request.onRetry?.();
        await sleep(delayMs, request.signal);
      }
    }
  }

  private delayBeforeRetry(error: unknown, retry: number): number | undefined {
    if (error instanceof ClipLineConnectionError) return retryDelay(this.settings.retry, retry);
    if (!(error instanceof ClipLineApiError) || !isRetryableStatus(error.status)) return undefined;
    return retryDelay(this.settings.retry, retry, error.retryAfterMs);
  }

  private async attempt<T>(
    request: ApiRequest,
    url: string,
    accept: string,
    timeoutCovers: 'body' | 'headers',
    read: (response: Response, url: string) => Promise<T>,
  ): Promise<T> {
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(new DOMException(`no answer within ${this.settings.timeoutMs} ms`, 'TimeoutError')),
      this.settings.timeoutMs,
    );
    const forwardAbort = () => controller.abort(request.signal?.reason);
    if (request.signal?.aborted) forwardAbort();
    request.signal?.addEventListener('abort', forwardAbort, { once: true });
    const headers: Record<string, string> = {
      accept,
      ...this.settings.headers,
      ...request.headers,
      authorization: `Bearer ${this.settings.apiKey}`,
    };
    if (request.body !== undefined) headers['content-type'] = 'application/json';
    if (request.idempotencyKey !== undefined) headers['idempotency-key'] = request.idempotencyKey;
    try {
      let response: Response;
      try {
        response = await this.settings.fetch(url, {
          method: request.method,
          headers,
          signal: controller.signal,
          // A redirect is not followed: fetch would drop the key on another origin (a 401 that
          // names no cause) and turn a POST into a GET. The answer below says where it points.
          redirect: 'manual',
          ...(request.body === undefined ? {} : { body: JSON.stringify(request.body) }),
        });
      } catch (error) {
        throw new ClipLineConnectionError(url, error);
      }
      // 304 answers a request that named the version it holds (If-None-Match): the caller's to read.
      const notModified = response.status === 304 && request.headers?.['if-none-match'] !== undefined;
      if (notModified) {
        await response.body?.cancel().catch(() => {});
        clearTimeout(timer);
        return await read(response, url);
      }
      if (response.status >= 300 && response.status < 400) {
        await response.body?.cancel().catch(() => {});
        const location = response.headers.get('location') ?? '(no Location)';
        const detail = `the server redirected ${request.method} ${new URL(url).pathname} to ${location.slice(0, 300)}; requests are not sent on to another address (the API key would go with them): point the client's base URL (CLIPLINE_URL) at the API itself`;
        throw new ClipLineApiError(request.method, url, { type: 'about:blank', title: response.statusText || 'Redirect', status: response.status, detail });
      }
      if (!response.ok) {
        // Read within the timeout: an error whose body stalls (a proxy's 502) must not hang the caller.
        const problem = await problemOf(response);
        throw new ClipLineApiError(request.method, url, problem, parseRetryAfter(response.headers.get('retry-after')));
      }
      if (timeoutCovers === 'headers') clearTimeout(timer);
      try {
        return await read(response, url);
      } catch (error) {
        if (error instanceof ClipLineProtocolError) throw error;
        throw new ClipLineConnectionError(url, error);
      }
    } finally {
      clearTimeout(timer);
      // A stream keeps following the caller's signal for as long as its body is read.
      if (timeoutCovers === 'body') request.signal?.removeEventListener('abort', forwardAbort);
    }
  }
}
