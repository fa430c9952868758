/**
 * Webhook signatures in the Standard Webhooks format (https://www.standardwebhooks.com), so
 * receivers can verify deliveries with any of its libraries:
 * - `webhook-id`: the delivery id, the same on every retry (receivers deduplicate on it);
 * - `webhook-timestamp`: unix seconds of this attempt (receivers refuse stale ones: no replays);
 * - `webhook-signature`: `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, one entry per
 *   signing secret, space-separated, so a receiver still holding the previous secret keeps
 *   verifying while a rotation overlaps.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const WEBHOOK_ID_HEADER = 'webhook-id';
export const WEBHOOK_TIMESTAMP_HEADER = 'webhook-timestamp';
export const WEBHOOK_SIGNATURE_HEADER = 'webhook-signature';

export interface WebhookMessage {
  /** The delivery id, stable across retries. */
  id: string;
  /** Unix seconds of this attempt. */
  timestampSeconds: number;
  /** The exact bytes sent: a signature over re-serialised JSON would not verify. */
  body: string;
}

export type WebhookHeaders = Record<typeof WEBHOOK_ID_HEADER | typeof WEBHOOK_TIMESTAMP_HEADER | typeof WEBHOOK_SIGNATURE_HEADER, string>;

/** The HMAC key of a `whsec_<base64>` secret: the decoded bytes, as every Standard Webhooks library takes it. */
function keyOf(secret: string): Buffer {
  return Buffer.from(secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret, 'base64');
}

function mac(secret: string, message: WebhookMessage): Buffer {
  return createHmac('sha256', keyOf(secret)).update(`${message.id}.${message.timestampSeconds}.${message.body}`).digest();
}

/** The three headers of a delivery signed with every secret in `secrets` (the current one first). */
export function signWebhook(secrets: readonly string[], message: WebhookMessage): WebhookHeaders {
  if (secrets.length === 0) throw new Error('a webhook needs at least one signing secret');
  return {
    [WEBHOOK_ID_HEADER]: message.id,
    [WEBHOOK_TIMESTAMP_HEADER]: String(message.timestampSeconds),
    [WEBHOOK_SIGNATURE_HEADER]: secrets.map((secret) => `v1,${mac(secret, message).toString('base64')}`).join(' '),
  };
}

/**
 * Checks a delivery the way a receiver should: one `v1` signature must match `secret`
 * (compared in constant time) and the timestamp must be within `toleranceSeconds` of now, so a
 * captured delivery cannot be replayed later. For receivers written in Node in this repository.
 */
export function verifyWebhook(
  secret: string,
  body: string,
  headers: Readonly<Record<string, string | string[] | undefined>>,
  options: { toleranceSeconds?: number; nowSeconds?: number } = {},
): boolean {
  const single = (name: string) => {
    const value = headers[name];
    return Array.isArray(value) ? undefined : value;
  };
  const id = single(WEBHOOK_ID_HEADER);
  const timestamp = single(WEBHOOK_TIMESTAMP_HEADER);
  const signatures = single(WEBHOOK_SIGNATURE_HEADER);
  if (!id || !timestamp || !signatures || !/^\d+$/.test(timestamp)) return false;
  const nowSeconds = options.nowSeconds ?? Math.floor(Date.now() / 1000);
  if (Math.abs(nowSeconds - Number(timestamp)) > (options.toleranceSeconds ?? 300)) return false;
  const expected = mac(secret, { id, timestampSeconds: Number(timestamp), body });
  return signatures.split(' ').some((entry) => {
    const [version, signature] = entry.split(',', 2);
    if (version !== 'v1' || !signature) return false;
    const presented = Buffer.from(signature, 'base64');
    return presented.length === expected.length && timingSafeEqual(presented, expected);
  });
}
