export {
  createClient,
  type CallOptions,
  type ClientOptions,
  type ClipLineClient,
  type ListAllOptions,
  type RegisterOptions,
  type SubmitOptions,
} from './client.js';
export type { DownloadDestination, DownloadedFile, DownloadHeaders, DownloadOptions } from './download-file.js';
export { ClipLineApiError, ClipLineConnectionError, ClipLineFileError, ClipLineProtocolError } from './errors.js';
export { EventStreamParser, type ServerSentEvent } from './event-stream-parser.js';
export type { RetryNotice } from './http-transport.js';
export { DEFAULT_RETRY_POLICY, parseRetryAfter, type RetryPolicy } from './retry-policy.js';
export type { WatchOptions } from './watch-video.js';
export * from './types.js';
