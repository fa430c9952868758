/**
 * The egress policy end to end: downloads and webhook deliveries aimed at a real loopback
 * server, in every notation of its address, must not reach it when private addresses are not
 * allowed. The server counts requests, so a refusal that came too late (after the request was
 * sent) fails the test; each notation is first shown to reach the server when private addresses
 * are allowed, so a notation that simply cannot connect would not pass for a refusal.
 */
import { randomUUID } from 'node:crypto';
import dns from 'node:dns/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { LocalStorage, PermanentJobError, VideosRepository, WebhookSecretsRepository, WebhooksRepository, parseSource } from '@clipline/shared';
import { parseKeyring } from '@clipline/shared/crypto';
import { fetchSource, type FetchSettings } from '../src/ingest/fetch-source.js';
import { deliverWebhook, type WebhookSettings } from '../src/notify/deliver-webhook.js';
import { createTestEnvironment, type TestEnvironment } from '../../../tests/helpers/services.js';

let env: TestEnvironment;
let videos: VideosRepository;
let webhooks: WebhooksRepository;
let secrets: WebhookSecretsRepository;
const servers: http.Server[] = [];
/** Requests the loopback target got, on 127.0.0.1 and ::1 alike. */
const hits: string[] = [];
let port: number;
let redirectorBase: string;
let redirectorHits = 0;
let redirectTo = '';

async function listen(server: http.Server, host: string, wanted = 0): Promise<number> {
  servers.push(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(wanted, host, resolve);
  });
  return (server.address() as AddressInfo).port;
}

beforeAll(async () => {
  env = await createTestEnvironment();
  videos = new VideosRepository(env.db);
  webhooks = new WebhooksRepository(env.db);
  secrets = new WebhookSecretsRepository(env.db, parseKeyring(env.config.accountsKeyring));
  const target = (req: http.IncomingMessage, res: http.ServerResponse) => {
    hits.push(`${req.method} ${req.headers.host} ${req.url}`);
    res.writeHead(204).end();
  };
  // The same port on both loopbacks, so "[::1]" and "localhost" (either family) reach it too.
  port = await listen(http.createServer(target), '127.0.0.1');
  await listen(http.createServer(target), '::1', port);
  // A second loopback address stands in for a public server that redirects: the test policies
  // trust exactly 127.0.0.2, so the first hop is allowed and only the redirect target is judged.
  const redirector = http.createServer((_req, res) => {
    redirectorHits += 1;
    res.writeHead(302, { location: redirectTo }).end();
  });
  redirectorBase = `http://127.0.0.2:${await listen(redirector, '127.0.0.2')}`;
});

afterAll(async () => {
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  await env?.cleanup();
});

beforeEach(() => {
  hits.length = 0;
  redirectorHits = 0;
});

/** The loopback target in every notation a user could write it in. */
const NOTATIONS = ['127.0.0.1', '127.1', '2130706433', '0x7f.1', '0177.0.0.1', '[::1]', '[::ffff:127.0.0.1]', '[::ffff:7f00:1]', 'localhost', 'localhost.'];
/**
 * The machine's own name where /etc/hosts points it at 127.0.0.1 (as Debian does): a name the
 * system resolver maps to loopback that is no localhost name, so only the connect-time lookup
 * guard can refuse it. Where the name resolves elsewhere (a container's own address) it is left out.
 */
const ownName = os.hostname().toLowerCase();
const ownAddresses = await dns.lookup(ownName, { all: true }).catch(() => []);
if (ownAddresses.length > 0 && ownAddresses.every(({ address }) => address === '127.0.0.1' || address === '::1')) NOTATIONS.push(ownName);
/** glibc does not resolve "localhost." from /etc/hosts (systemd-resolved does), so it is only refused, not reached, here. */
const REACHABLE = NOTATIONS.filter((host) => host !== 'localhost.');
const at = (host: string, path: string) => `http://${host}:${port}${path}`;

function fetchSettings(overrides: Partial<FetchSettings>): FetchSettings {
  return {
    storage: new LocalStorage(env.config.storageDir),
    maxBytes: 1024 * 1024,
    fileRoots: [],
    allowPrivateHosts: false,
    downloadTimeoutMs: 5000,
    ...overrides,
  };
}

/** Runs a download and returns its error (every download here fails: the target sends no video). */
async function downloadError(url: string, overrides: Partial<FetchSettings> = {}): Promise<Error> {
  const parsed = parseSource(url);
  if (!parsed.ok) throw new Error(parsed.reason);
  return fetchSource(fetchSettings(overrides), randomUUID(), parsed.source).then(
    () => new Error('the download succeeded'),
    (error: Error) => error,
  );
}

function webhookSettings(allowPrivateHosts: boolean): WebhookSettings {
  return { secrets, timeoutMs: 5000, allowPrivateHosts };
}

/** A finished video whose callback is `url`: its outbox delivery id. */
async function pendingDelivery(url: string): Promise<string> {
  const id = randomUUID();
  await videos.create({ id, source: '/media/a.mp4', title: null, steps: [], callbackUrl: url });
  await videos.setStatus(id, 'completed');
  const [delivery] = await webhooks.forVideo(id);
  return delivery!.id;
}

async function deliveryError(deliveryId: string, allowPrivateHosts: boolean): Promise<Error | undefined> {
  return deliverWebhook(deliveryId, { webhooks, videos, settings: webhookSettings(allowPrivateHosts) }, { isLast: false }).then(
    () => undefined,
    (error: Error) => error,
  );
}

describe('source downloads', () => {
  it('reach the loopback target in every notation when private addresses are allowed', async () => {
    // One hit per notation: a spelling that cannot connect at all must not pass for a refusal below.
    for (const host of REACHABLE) {
      const before = hits.length;
      await downloadError(at(host, '/clip.mp4'), { allowPrivateHosts: true });
      expect([host, hits.length - before]).toEqual([host, 1]);
    }
  });

  it.each(NOTATIONS)('never reach it as %s otherwise, and say why', async (host) => {
    const error = await downloadError(at(host, '/clip.mp4'));
    expect(error).toBeInstanceOf(PermanentJobError);
    expect(error.message).toMatch(/refused: .*(loopback address|IPv4-mapped 127\.0\.0\.1|a localhost name).*ALLOW_PRIVATE_SOURCES/);
    expect(hits).toEqual([]);
  });

  it('check names when they are resolved, not only by their spelling', async () => {
    if (!NOTATIONS.includes(ownName)) return; // no name here resolves to loopback but localhost ones
    const error = await downloadError(at(ownName, '/clip.mp4'));
    expect(error.message).toMatch(new RegExp(`refused: ${ownName} resolves to (127\\.0\\.0\\.1|::1), which is (a|the) loopback address`));
  });

  it('follow a redirect to the loopback target only when the policy allows that target too', async () => {
    redirectTo = at('127.0.0.1', '/bounced.mp4');
    await downloadError(`${redirectorBase}/clip.mp4`, { trustedAddresses: ['127.0.0.2', '127.0.0.1'] });
    expect({ redirectorHits, hits }).toEqual({ redirectorHits: 1, hits: [`GET 127.0.0.1:${port} /bounced.mp4`] });
  });

  it.each(['127.0.0.1', '2130706433', '[::ffff:7f00:1]', '[::1]', 'localhost'])(
    'refuse a redirect to the loopback target as %s, before any request reaches it',
    async (host) => {
      redirectTo = at(host, '/bounced.mp4');
      const error = await downloadError(`${redirectorBase}/clip.mp4`, { trustedAddresses: ['127.0.0.2'] });
      expect(redirectorHits).toBe(1);
      expect(hits).toEqual([]);
      expect(error).toBeInstanceOf(PermanentJobError);
      expect(error.message).toMatch(
        /^download of http:\/\/127\.0\.0\.2:\d+\/clip\.mp4 refused: .*(loopback address|IPv4-mapped 127\.0\.0\.1|a localhost name)/,
      );
    },
  );

  it('refuse a redirect to another scheme', async () => {
    redirectTo = 'file:///etc/passwd';
    const error = await downloadError(`${redirectorBase}/clip.mp4`, { trustedAddresses: ['127.0.0.2'] });
    expect(error).toBeInstanceOf(PermanentJobError);
    expect(error.message).toMatch(/refused: Unsupported protocol: file:/);
  });
});

describe('webhook deliveries', () => {
  it('reach the loopback target in every notation when private addresses are allowed', async () => {
    for (const host of REACHABLE) {
      const before = hits.length;
      expect(await deliveryError(await pendingDelivery(at(host, '/hook')), true)).toBeUndefined();
      expect([host, hits.length - before]).toEqual([host, 1]);
    }
  });

  it.each(NOTATIONS)('never reach it as %s otherwise, and fail for good saying why', async (host) => {
    const deliveryId = await pendingDelivery(at(host, '/hook'));
    const error = await deliveryError(deliveryId, false);
    expect(error).toBeInstanceOf(PermanentJobError);
    expect(error?.message).toMatch(/^webhook to .* refused: .*(loopback address|IPv4-mapped 127\.0\.0\.1|a localhost name).*ALLOW_PRIVATE_SOURCES/);
    expect(hits).toEqual([]);
    expect(await webhooks.find(deliveryId)).toMatchObject({ state: 'failed', attempts: 1 });
  });

  it('do not follow redirects, even where private addresses are allowed', async () => {
    redirectTo = at('127.0.0.1', '/bounced');
    const error = await deliveryError(await pendingDelivery(`${redirectorBase}/hook`), true);
    expect(error).toBeInstanceOf(PermanentJobError);
    expect(error?.message).toMatch(/HTTP 302/);
    expect({ redirectorHits, hits }).toEqual({ redirectorHits: 1, hits: [] });
  });
});
