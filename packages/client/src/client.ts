import { randomUUID } from 'node:crypto';
import { downloadFile, type DownloadDestination, type DownloadedFile, type DownloadOptions } from './download-file.js';
import { ClipLineApiError } from './errors.js';
import { HttpTransport, type RetryNotice } from './http-transport.js';
import { resolveRetryPolicy, type RetryPolicy } from './retry-policy.js';
import type {
  ApiKey,
  ApiKeyList,
  ApiKeyRevoked,
  BatchAccepted,
  CancelAccepted,
  CreatedApiKey,
  Job,
  JobAccepted,
  NewApiKey,
  RegistrationAccepted,
  SubmissionAccepted,
  UserRegistration,
  Video,
  VideoEvent,
  VideoListQuery,
  VideoPage,
  VideoSubmission,
} from './types.js';
import { watchVideoEvents, type WatchOptions } from './watch-video.js';

export interface ClientOptions {
  /** Where the producer API listens, e.g. `https://clipline.internal` (a path prefix is kept). */
  baseUrl: string | URL;
  /** Sent as `Authorization: Bearer <apiKey>`. */
  apiKey: string;
  /** @defaultValue globalThis.fetch */
  fetch?: typeof globalThis.fetch;
  /** Retries of calls that are safe to repeat; `false` turns them off. @defaultValue {@link DEFAULT_RETRY_POLICY} */
  retry?: Partial<RetryPolicy> | false;
  /** Per attempt, until the answer has arrived (for event streams: its headers). @defaultValue 30000 */
  timeoutMs?: number;
  /** Added to every request, e.g. a User-Agent naming the calling service. */
  headers?: Record<string, string>;
  /** Told before every retry, with the reason and the wait. */
  onRetry?: (notice: RetryNotice) => void;
}

export interface CallOptions {
  signal?: AbortSignal;
}

export interface SubmitOptions extends CallOptions {
  /**
   * `Idempotency-Key` of the submission: a repeat with the same key and body gets the first
   * answer instead of a second video. A random key is made for every call unless one is given;
   * `false` sends none, which also stops retries of the call.
   */
  idempotencyKey?: string | false;
}

export interface RegisterOptions extends CallOptions {
  /**
   * Sent only when given: a registration needs no key to be safe (a repeat is refused as a
   * duplicate email), and without one the request is not retried.
   */
  idempotencyKey?: string;
}

export interface ListAllOptions extends CallOptions {
  status?: VideoListQuery['status'];
  /** Page size of the requests behind the iteration (1-100). @defaultValue 100 */
  pageSize?: number;
}

export interface ClipLineClient {
  submitVideo(submission: VideoSubmission, options?: SubmitOptions): Promise<SubmissionAccepted>;
  /** Up to 1000 videos in one request (`POST /v1/videos:batch`), enqueued together. */
  submitVideos(submissions: readonly VideoSubmission[], options?: SubmitOptions): Promise<BatchAccepted>;
  getVideo(id: string, options?: CallOptions): Promise<Video>;
  /** One page, newest first. */
  listVideos(query?: VideoListQuery, options?: CallOptions): Promise<VideoPage>;
  /** Every video matching, following `nextCursor` page after page. */
  iterateVideos(options?: ListAllOptions): AsyncGenerator<Video, void, undefined>;
  /** Rejects with a 409 {@link ClipLineApiError} when the video had already finished. */
  cancelVideo(id: string, options?: CallOptions): Promise<CancelAccepted>;
  /** Live events of a video until it finishes; see {@link WatchOptions}. */
  watchVideo(id: string, options?: WatchOptions): AsyncGenerator<VideoEvent, void, undefined>;
  /** Enqueues a job of a declared queue; the payload is checked by that job's schema on the server. */
  submitJob<Payload>(queue: string, name: string, payload: Payload, options?: SubmitOptions): Promise<JobAccepted>;
  getJob<Result = unknown>(queue: string, id: string, options?: CallOptions): Promise<Job<Result>>;
  registerUser(registration: UserRegistration, options?: RegisterOptions): Promise<RegistrationAccepted>;
  /**
   * Streams a file the API serves (a clip's `url`, `thumbnailUrl` or `voiceoverUrl`: paths below
   * the base URL, sent with the same key) to `destination`, through `<destination>.<random>.part`;
   * a body that breaks off is taken up where it broke (`Range` / `If-Range`), up to three times.
   */
  downloadFile(apiPath: string, destination: DownloadDestination, options?: DownloadOptions): Promise<DownloadedFile>;

  // API keys kept by the server (`/v1/admin/keys`). These need an operator key (ADMIN_API_KEYS,
  // or a key created with `admin: true`): the server answers any other key 404, as if the routes
  // did not exist.

  /** Creates a key; the answer is the only place its secret ever appears. Not retried. */
  createApiKey(key: NewApiKey, options?: CallOptions): Promise<CreatedApiKey>;
  /** Every key, revoked ones included, oldest first. */
  listApiKeys(options?: CallOptions): Promise<ApiKey[]>;
  /**
   * Revokes a key named by its id, its `cl_…` prefix or the whole key; it stops working at once.
   * Rejects with a 404 {@link ClipLineApiError} when no such key exists.
   */
  revokeApiKey(reference: string, options?: CallOptions): Promise<ApiKeyRevoked>;
}

function checkedBaseUrl(value: string | URL): string {
  let url: URL;
  try {
    url = new URL(String(value));
  } catch {
    throw new TypeError(`baseUrl must be an absolute http(s) URL, got ${JSON.stringify(String(value))}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`baseUrl must use http or https, got ${url.protocol}`);
  if (url.search || url.hash) throw new TypeError('baseUrl must not carry a query or fragment');
  return url.href.replace(/\/+$/, '');
}

function checkedApiKey(apiKey: string): string {
  if (typeof apiKey !== 'string' || !/^[\x21-\x7e]{1,512}$/.test(apiKey)) {
    throw new TypeError('apiKey must be 1-512 visible ASCII characters (no spaces)');
  }
  return apiKey;
}

/**
 * One path segment: an empty id, `.` or `..` would name another route (`/v1/videos/` is the
 * list, `/v1/jobs/..` the parent), so they are refused before any request.
 */
const segment = (value: string) => {
  if (typeof value !== 'string' || value === '' || value === '.' || value === '..') {
    throw new TypeError(`expected an id, got ${JSON.stringify(value)}`);
  }
  return encodeURIComponent(value);
};

const WHOLE_API_KEY = /^(cl_[0-9A-Za-z]{12})_[0-9A-Za-z]{32}$/;

/**
 * A whole key is sent as its prefix, which names the same key to the server: the secret part
 * would otherwise sit in the request line, where proxies and access logs keep it.
 */
export function keyReference(reference: string): string {
  const trimmed = reference.trim();
  return WHOLE_API_KEY.exec(trimmed)?.[1] ?? trimmed;
}

function keyFor(options: SubmitOptions | undefined): string | undefined {
  if (options?.idempotencyKey === false) return undefined;
  return options?.idempotencyKey ?? randomUUID();
}

/** A typed client of the clipline API. It uses the global fetch; nothing else. */
export function createClient(options: ClientOptions): ClipLineClient {
  const timeoutMs = options.timeoutMs ?? 30_000;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new TypeError(`timeoutMs must be a positive number, got ${timeoutMs}`);
  const fetchImplementation = options.fetch ?? globalThis.fetch;
  if (typeof fetchImplementation !== 'function') throw new TypeError('no fetch available: pass options.fetch or use Node 20+');
  const transport = new HttpTransport({
    baseUrl: checkedBaseUrl(options.baseUrl),
    apiKey: checkedApiKey(options.apiKey),
    fetch: fetchImplementation,
    retry: resolveRetryPolicy(options.retry),
    timeoutMs,
    headers: options.headers ?? {},
    ...(options.onRetry ? { onRetry: options.onRetry } : {}),
  });

  const client: ClipLineClient = {
    submitVideo: (submission, call) =>
      transport.json({ method: 'POST', path: '/v1/videos', body: submission, idempotent: false, idempotencyKey: keyFor(call), signal: call?.signal }),

    submitVideos: (submissions, call) =>
      transport.json({
        method: 'POST',
        path: '/v1/videos:batch',
        body: { videos: submissions },
        idempotent: false,
        idempotencyKey: keyFor(call),
        signal: call?.signal,
      }),

    getVideo: async (id, call) => transport.json({ method: 'GET', path: `/v1/videos/${segment(id)}`, idempotent: true, signal: call?.signal }),

    listVideos: (query = {}, call) =>
      transport.json({
        method: 'GET',
        path: '/v1/videos',
        query: { status: query.status, limit: query.limit, cursor: query.cursor },
        idempotent: true,
        signal: call?.signal,
      }),

    async *iterateVideos(list = {}) {
      let cursor: string | undefined;
      do {
        const page = await client.listVideos({ status: list.status, limit: list.pageSize ?? 100, cursor }, { signal: list.signal });
        yield* page.items;
        cursor = page.nextCursor ?? undefined;
      } while (cursor !== undefined);
    },

    cancelVideo: async (id, call) => {
      let repeated = false;
      const path = `/v1/videos/${segment(id)}`;
      try {
        return await transport.json<CancelAccepted>({ method: 'DELETE', path, idempotent: true, signal: call?.signal, onRetry: () => (repeated = true) });
      } catch (error) {
        // A repeat after a lost answer finds the video cancelled: by the first request, which did cancel it.
        if (repeated && error instanceof ClipLineApiError && error.status === 409 && error.problem.videoStatus === 'cancelled')
          return { id, status: 'cancelled' };
        throw error;
      }
    },

    watchVideo: (id, watch) => watchVideoEvents(transport, id, watch),

    submitJob: async (queue, name, payload, call) =>
      transport.json({
        method: 'POST',
        path: `/v1/jobs/${segment(queue)}/${segment(name)}`,
        body: payload,
        idempotent: false,
        idempotencyKey: keyFor(call),
        signal: call?.signal,
      }),

    getJob: async (queue, id, call) =>
      transport.json({ method: 'GET', path: `/v1/jobs/${segment(queue)}/${segment(id)}`, idempotent: true, signal: call?.signal }),

    registerUser: (registration, call) =>
      transport.json({ method: 'POST', path: '/v1/users', body: registration, idempotent: false, idempotencyKey: call?.idempotencyKey, signal: call?.signal }),

    downloadFile: (apiPath, destination, download = {}) =>
      downloadFile(transport, apiPath, destination, { ...download, idleTimeoutMs: download.idleTimeoutMs ?? timeoutMs }),

    // A repeated create would make a second key, and the admin routes take no Idempotency-Key.
    createApiKey: (key, call) => transport.json({ method: 'POST', path: '/v1/admin/keys', body: key, idempotent: false, signal: call?.signal }),

    listApiKeys: async (call) => {
      const list = await transport.json<ApiKeyList>({ method: 'GET', path: '/v1/admin/keys', idempotent: true, signal: call?.signal });
      return list.items;
    },

    revokeApiKey: async (reference, call) => {
      const ref = keyReference(reference);
      if (ref === '') throw new TypeError('revokeApiKey needs a key id, cl_… prefix or key; got an empty string');
      return transport.json({ method: 'DELETE', path: `/v1/admin/keys/${segment(ref)}`, idempotent: true, signal: call?.signal });
    },
  };
  return client;
}
