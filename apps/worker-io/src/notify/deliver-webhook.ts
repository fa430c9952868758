import {
  PermanentJobError,
  signWebhook,
  WEBHOOK_SIGNATURE_HEADER,
  type VideosRepository,
  type WebhookSecretsRepository,
  type WebhooksRepository,
} from '@clipline/shared';
import { got, HTTPError, RequestError } from 'got';
import { assertPublicHost, guardedLookup } from '../ingest/address-guard.js';

export interface WebhookSettings {
  /** The tenants' signing secrets. */
  secrets: WebhookSecretsRepository;
  timeoutMs: number;
  allowPrivateHosts: boolean;
}

/**
 * Sends one outbox delivery: the video as the API shows it, signed. 2xx delivers it; 408, 429
 * and 5xx or network errors are retried by the job's backoff; any other answer (and a refused
 * address) fails it for good. Every attempt is logged.
 */
export async function deliverWebhook(
  deliveryId: string,
  deps: { webhooks: WebhooksRepository; videos: VideosRepository; settings: WebhookSettings },
  attempt: { isLast: boolean; signal?: AbortSignal },
): Promise<{ status: number } | { skipped: string }> {
  const delivery = await deps.webhooks.find(deliveryId);
  if (!delivery) throw new PermanentJobError(`webhook delivery ${deliveryId} does not exist`);
  if (delivery.state !== 'pending') return { skipped: `already ${delivery.state}` };
  const video = await deps.videos.find(delivery.videoId);
  const body = JSON.stringify({ id: delivery.id, event: delivery.event, createdAt: new Date().toISOString(), video: video ?? { id: delivery.videoId } });
  const started = performance.now();
  try {
    assertPublicHost(new URL(delivery.url), deps.settings.allowPrivateHosts);
    const response = await got.post(delivery.url, {
      body,
      headers: {
        'content-type': 'application/json',
        'user-agent': 'clipline-webhooks/0.1',
        [WEBHOOK_SIGNATURE_HEADER]: signWebhook((await deps.settings.secrets.signing(delivery.tenantId))[0]!, body),
        'clipline-event': delivery.event,
        'clipline-delivery': delivery.id,
      },
      timeout: { request: deps.settings.timeoutMs },
      retry: { limit: 0 },
      followRedirect: false,
      dnsLookup: guardedLookup(deps.settings.allowPrivateHosts) as never,
      ...(attempt.signal ? { signal: attempt.signal } : {}),
    });
    await deps.webhooks.recordAttempt(delivery.id, { statusCode: response.statusCode, error: null, durationMs: performance.now() - started }, 'delivered');
    return { status: response.statusCode };
  } catch (error) {
    const durationMs = performance.now() - started;
    const status = error instanceof HTTPError ? error.response.statusCode : null;
    const cause = error instanceof RequestError ? (error.cause as Error | undefined) : undefined;
    const blocked = cause?.name === 'BlockedAddressError' || (error as Error).name === 'BlockedAddressError';
    const permanent = blocked || (status !== null && status >= 300 && status < 500 && status !== 408 && status !== 429);
    const message = status !== null ? `HTTP ${status}` : (cause?.message ?? (error as Error).message);
    // A worker shutting down hands the job back: that attempt must not close the delivery for good.
    const closing = attempt.signal?.aborted === true;
    const outcome = permanent ? 'failed' : attempt.isLast && !closing ? 'failed' : 'retry';
    await deps.webhooks.recordAttempt(delivery.id, { statusCode: status, error: message, durationMs }, outcome);
    if (permanent) throw new PermanentJobError(`webhook to ${new URL(delivery.url).host} refused: ${message}`);
    throw new Error(`webhook to ${new URL(delivery.url).host} failed: ${message}`);
  }
}
