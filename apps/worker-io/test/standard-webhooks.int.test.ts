/**
 * Deliveries verify with the reference Standard Webhooks library (npm `standardwebhooks`), not
 * only with our own verifier: a receiver written against the spec in any language must accept
 * them. Real deliveries from deliverWebhook to a loopback receiver, secrets from the real
 * repository on PostgreSQL.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { VideosRepository, WebhookSecretsRepository, WebhooksRepository } from '@clipline/shared';
import { parseKeyring } from '@clipline/shared/crypto';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { deliverWebhook } from '../src/notify/deliver-webhook.js';
import { createTestEnvironment, type TestEnvironment } from '../../../tests/helpers/services.js';

interface Received {
  body: string;
  headers: Record<string, string>;
}

let env: TestEnvironment;
let videos: VideosRepository;
let webhooks: WebhooksRepository;
let secrets: WebhookSecretsRepository;
let receiver: http.Server;
let base: string;
const received = new Map<string, Received>();

beforeAll(async () => {
  env = await createTestEnvironment();
  videos = new VideosRepository(env.db);
  webhooks = new WebhooksRepository(env.db);
  secrets = new WebhookSecretsRepository(env.db, parseKeyring(env.config.accountsKeyring));
  receiver = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      const headers = Object.fromEntries(Object.entries(req.headers).map(([name, value]) => [name, String(value)]));
      received.set(req.url ?? '', { body, headers });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
});

afterAll(async () => {
  // A beforeAll that failed half-way leaves some of these unset; close what was opened.
  if (receiver) {
    receiver.closeAllConnections();
    await new Promise((resolve) => receiver.close(resolve));
  }
  await env?.cleanup();
});

/** Finishes a video of `tenant` with a callback, delivers its webhook and returns what the receiver got. */
async function deliveredFor(tenant: string): Promise<Received & { deliveryId: string }> {
  const id = randomUUID();
  const path = `/hooks/${id}`;
  await videos.create({ id, source: '/media/a.mp4', title: null, steps: [], callbackUrl: `${base}${path}`, tenantId: tenant });
  await videos.setStatus(id, 'completed');
  const [delivery] = await webhooks.forVideo(id);
  await deliverWebhook(delivery!.id, { webhooks, videos, settings: { secrets, timeoutMs: 5000, allowPrivateHosts: true } }, { isLast: false });
  const hit = received.get(path);
  if (!hit) throw new Error(`the receiver got nothing at ${path}`);
  return { ...hit, deliveryId: delivery!.id };
}

const verifies = (secret: string, hit: Received) => {
  try {
    new Webhook(secret).verify(hit.body, hit.headers);
    return true;
  } catch (error) {
    if (error instanceof WebhookVerificationError) return false;
    throw error;
  }
};

it("verifies with the tenant's secret in the reference library, as the delivery's id and this attempt's time", async () => {
  const tenant = `t-${randomUUID().slice(0, 8)}`;
  const before = Math.floor(Date.now() / 1000);
  const hit = await deliveredFor(tenant);
  const { secret } = await secrets.current(tenant);
  expect(secret).toMatch(/^whsec_/);
  expect(new Webhook(secret).verify(hit.body, hit.headers)).toMatchObject({ event: 'video.completed', id: hit.deliveryId });
  expect(hit.headers['webhook-id']).toBe(hit.deliveryId);
  expect(Number(hit.headers['webhook-timestamp'])).toBeGreaterThanOrEqual(before);
  expect(hit.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
  // A body changed on the way does not verify.
  expect(verifies(secret, { ...hit, body: hit.body.replace('completed', 'failed') })).toBe(false);
});

it('signs with both secrets while a rotation overlaps, and each verifies on its own', async () => {
  const tenant = `t-${randomUUID().slice(0, 8)}`;
  const old = (await secrets.current(tenant)).secret;
  const fresh = (await secrets.rotate(tenant)).secret;
  expect(fresh).not.toBe(old);
  const hit = await deliveredFor(tenant);
  expect(hit.headers['webhook-signature']!.split(' ')).toHaveLength(2);
  expect({ old: verifies(old, hit), fresh: verifies(fresh, hit) }).toEqual({ old: true, fresh: true });
});

it("does not verify with another tenant's secret", async () => {
  const [a, b] = [`a-${randomUUID().slice(0, 8)}`, `b-${randomUUID().slice(0, 8)}`];
  const hit = await deliveredFor(a);
  const secretOfA = (await secrets.current(a)).secret;
  const secretOfB = (await secrets.current(b)).secret;
  expect(secretOfB).not.toBe(secretOfA);
  expect({ a: verifies(secretOfA, hit), b: verifies(secretOfB, hit) }).toEqual({ a: true, b: false });
});
