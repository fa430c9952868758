import {
  checkUrl,
  EgressRefusedError,
  egressAgents,
  isDependencyOutage,
  PermanentJobError,
  RetryAfterError,
  signWebhook,
  type EgressPolicy,
  type VideosRepository,
  type WebhookDelivery,
  type WebhookSecretsRepository,
  type WebhooksRepository,
} from '@clipline/shared';
import { got, HTTPError, RequestError, type PlainResponse, type Response } from 'got';
import { retryAfterMs } from '../providers/provider-errors.js';

export interface WebhookSettings {
  /** The tenants' signing secrets. */
  secrets: WebhookSecretsRepository;
  timeoutMs: number;
  /** Let deliveries reach loopback and private addresses (ALLOW_PRIVATE_SOURCES). */
  allowPrivateHosts: boolean;
}

/**
 * Sends one outbox delivery: the video as the API showed it at the first attempt (every retry
 * sends that same body, kept with the delivery until it is settled), signed in the Standard Webhooks
 * format with every secret of the tenant that signs now. 2xx delivers it; 408, 429 and 5xx or
 * network errors are retried by the job's backoff (a 429 or 503 with `Retry-After` no sooner
 * than it asks, up to an hour); any other answer (and an address the egress
 * policy refuses) fails it for good. Every attempt is logged. Redirects are not followed: a
 * receiver that moved must be given its new URL. Only the request's own failures count as
 * attempts: the database failing before the request (reading the secrets) or after it (recording the
 * outcome) is thrown as it is, and the job waits for the database without spending an attempt.
 * A request that was answered 2xx but could not be recorded is sent again, with the same
 * `webhook-id`, which receivers use to drop a delivery they already have.
 */
export async function deliverWebhook(
  deliveryId: string,
  deps: { webhooks: WebhooksRepository; videos: VideosRepository; settings: WebhookSettings },
  attempt: { isLast: boolean; signal?: AbortSignal },
): Promise<{ status: number } | { skipped: string }> {
  const delivery = await deps.webhooks.find(deliveryId);
  if (!delivery) throw new PermanentJobError(`webhook delivery ${deliveryId} does not exist`);
  if (delivery.state !== 'pending') return { skipped: `already ${delivery.state}` };
  const secrets = await signingSecrets(deps.settings.secrets, delivery.tenantId);
  // One message under one webhook-id: the body of the first attempt, the video as it was then.
  const body = delivery.body ?? (await deps.webhooks.keepBody(delivery.id, await firstBody(delivery, deps.videos)));
  if (body === undefined) return { skipped: 'settled by another run' };
  const started = performance.now();
  let status: number;
  try {
    if (secrets instanceof Error) throw secrets;
    status = await post(delivery, secrets, body, {
      timeoutMs: deps.settings.timeoutMs,
      egress: { allowPrivate: deps.settings.allowPrivateHosts },
      signal: attempt.signal,
    });
  } catch (error) {
    const durationMs = performance.now() - started;
    const status = error instanceof HTTPError ? error.response.statusCode : null;
    const cause = error instanceof RequestError ? (error.cause as Error | undefined) : undefined;
    const blocked = cause instanceof EgressRefusedError || error instanceof EgressRefusedError;
    const permanent = blocked || (status !== null && status >= 300 && status < 500 && status !== 408 && status !== 429);
    // A receiver that is busy (429) or down for a while (503) may say when to come back.
    const asked = (status === 429 || status === 503) && error instanceof HTTPError ? retryAfterMs(error.response.headers['retry-after']) : undefined;
    const message =
      status !== null
        ? `HTTP ${status}${asked !== undefined ? ` (Retry-After ${Math.ceil(asked / 1000)} s)` : ''}`
        : (cause?.message ?? (error as Error).message);
    // A worker shutting down hands the job back: that attempt must not close the delivery for good.
    const closing = attempt.signal?.aborted === true;
    const outcome = permanent ? 'failed' : attempt.isLast && !closing ? 'failed' : 'retry';
    await deps.webhooks.recordAttempt(delivery.id, { statusCode: status, error: message, durationMs }, outcome);
    if (permanent) throw new PermanentJobError(`webhook to ${hostOf(delivery.url)} refused: ${message}`);
    // The next attempt comes no sooner than the receiver asked (the queue's backoff reads it).
    if (asked !== undefined) throw new RetryAfterError(`webhook to ${hostOf(delivery.url)} failed: ${message}`, asked);
    throw new Error(`webhook to ${hostOf(delivery.url)} failed: ${message}`);
  }
  await deps.webhooks.recordAttempt(delivery.id, { statusCode: status, error: null, durationMs: performance.now() - started }, 'delivered');
  return { status };
}

/** A delivery's message: its event and the video as the API shows it now. */
async function firstBody(delivery: WebhookDelivery, videos: VideosRepository): Promise<string> {
  const video = await videos.find(delivery.videoId);
  return JSON.stringify({ id: delivery.id, event: delivery.event, createdAt: new Date().toISOString(), video: video ?? { id: delivery.videoId } });
}

/** The receiver's host, as errors name it; an address that is no URL (refused already) as it is. */
function hostOf(url: string): string {
  return URL.canParse(url) ? new URL(url).host : JSON.stringify(url.slice(0, 200));
}

/**
 * The tenant's signing secrets, or the error that kept them from being read as this attempt's
 * failure (a secret the keyring cannot open). The database away is thrown as it is: no attempt
 * was made, and none is recorded.
 */
async function signingSecrets(secrets: WebhookSecretsRepository, tenantId: string): Promise<Parameters<typeof signWebhook>[0] | Error> {
  try {
    return await secrets.signing(tenantId);
  } catch (error) {
    if (isDependencyOutage(error)) throw error;
    return error instanceof Error ? error : new Error(String(error));
  }
}

/**
 * One signed POST of a delivery; resolves with a 2xx status, throws for anything else. Only the
 * status is read: the receiver's body is dropped unread as soon as its answer begins, so a
 * receiver (which a tenant names) cannot make the worker hold an endless body in memory.
 */
async function post(
  delivery: Pick<WebhookDelivery, 'id' | 'event' | 'url'>,
  secrets: Parameters<typeof signWebhook>[0],
  body: string,
  options: { timeoutMs: number; egress: EgressPolicy; signal: AbortSignal | undefined },
): Promise<number> {
  // A literal address is checked here; a name is checked on each address it resolves to, when the socket opens.
  checkUrl(delivery.url, options.egress);
  const request = got.stream.post(delivery.url, {
    body,
    headers: {
      'content-type': 'application/json',
      'user-agent': 'clipline-webhooks/0.1',
      ...signWebhook(secrets, { id: delivery.id, timestampSeconds: Math.floor(Date.now() / 1000), body }),
      'clipline-event': delivery.event,
    },
    timeout: { request: options.timeoutMs },
    retry: { limit: 0 },
    followRedirect: false,
    throwHttpErrors: false,
    agent: egressAgents(options.egress),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const response = await new Promise<PlainResponse>((resolve, reject) => {
    request.once('response', resolve);
    // Not once: an error after the answer (the destroyed stream's) must find a listener too.
    request.on('error', reject);
  }).catch((error: unknown) => {
    request.destroy();
    throw error;
  });
  await discardBody(request);
  // Without followRedirect got answers a 3xx as it does a success; a receiver that moved was not delivered to.
  if (response.statusCode >= 300) throw new HTTPError(response as Response);
  return response.statusCode;
}

/** What is read of a receiver's body, to be thrown away, so its connection can carry the next delivery. */
const DISCARDED_BODY_BYTES = 64 * 1024;

/**
 * Reads the answer's body to its end and drops it, keeping the connection for the next delivery;
 * past {@link DISCARDED_BODY_BYTES}, or on an error once the status is known, the connection is
 * closed instead. Resolves either way: the status decides the delivery.
 */
function discardBody(request: NodeJS.ReadableStream & { destroy(): void }): Promise<void> {
  return new Promise((resolve) => {
    let read = 0;
    const close = () => {
      request.destroy();
      resolve();
    };
    request.on('data', (chunk: Buffer) => {
      read += chunk.length;
      if (read > DISCARDED_BODY_BYTES) close();
    });
    request.once('end', () => resolve());
    request.once('error', close);
    request.once('close', () => resolve());
  });
}
