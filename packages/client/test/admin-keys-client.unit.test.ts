/**
 * What the client's API-key methods send and how they read the answers, seen through the
 * `fetch` option (the server's side is tested against the real producer in cli.int.test.ts).
 */
import { ClipLineApiError, createClient, type ApiKey } from '../src/index.js';

interface SentRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: unknown;
}

/** A fetch that records each request and answers from `answers` in turn. */
function recordingFetch(...answers: (() => Response)[]) {
  const sent: SentRequest[] = [];
  const fetch: typeof globalThis.fetch = async (input, init) => {
    const headers = Object.fromEntries(new Headers(init?.headers).entries());
    sent.push({ method: init?.method ?? 'GET', url: String(input), headers, body: typeof init?.body === 'string' ? JSON.parse(init.body) : undefined });
    const answer = answers.shift();
    if (!answer) throw new Error(`unexpected request ${init?.method} ${String(input)}`);
    return answer();
  };
  return { fetch, sent };
}

const json =
  (status: number, body: unknown, headers: Record<string, string> = {}) =>
  () =>
    new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
const problem = (status: number, title: string, detail: string) => json(status, { type: 'about:blank', title, status, detail });

const BASE = 'http://clipline.test/prefix';
const client = (fetch: typeof globalThis.fetch) => createClient({ baseUrl: BASE, apiKey: 'operator-key', fetch, retry: { baseDelayMs: 1, maxDelayMs: 1 } });

const created = {
  id: '7e3f1a2b-0c4d-4e5f-8a9b-0c1d2e3f4a5b',
  name: 'ci',
  prefix: 'cl_AbCdEfGhIjKl',
  key: `cl_AbCdEfGhIjKl_${'x'.repeat(32)}`,
  tenant: 'ci',
  role: 'tenant',
};

describe('createApiKey', () => {
  it('POSTs the new key as JSON with the bearer key and returns the created key', async () => {
    const { fetch, sent } = recordingFetch(json(201, created));
    expect(await client(fetch).createApiKey({ name: 'ci', tenant: 'acme', admin: true })).toEqual(created);
    expect(sent).toEqual([
      {
        method: 'POST',
        url: `${BASE}/v1/admin/keys`,
        headers: expect.objectContaining({ authorization: 'Bearer operator-key', 'content-type': 'application/json' }),
        body: { name: 'ci', tenant: 'acme', admin: true },
      },
    ]);
    // Nothing makes a repeat harmless, so nothing may be repeated.
    expect(sent[0]!.headers['idempotency-key']).toBeUndefined();
  });

  it('is not retried: a 503 is the caller’s to handle, since a repeat could make a second key', async () => {
    const { fetch, sent } = recordingFetch(problem(503, 'Service Unavailable', 'the database is unreachable; retry shortly'), json(201, created));
    await expect(client(fetch).createApiKey({ name: 'ci' })).rejects.toMatchObject({ status: 503 });
    expect(sent).toHaveLength(1);
  });
});

describe('listApiKeys', () => {
  it('GETs the keys and returns the items, oldest first as the server sent them', async () => {
    const items: ApiKey[] = [
      { ...created, createdAt: '2025-01-01T00:00:00.000Z', lastUsedAt: null, revokedAt: null },
      {
        ...created,
        id: 'b',
        prefix: 'cl_zzzzzzzzzzzz',
        role: 'admin',
        createdAt: '2025-01-02T00:00:00.000Z',
        lastUsedAt: '2025-01-03T00:00:00.000Z',
        revokedAt: '2025-01-04T00:00:00.000Z',
      },
    ].map(({ key: _key, ...rest }) => rest as ApiKey);
    const { fetch, sent } = recordingFetch(problem(503, 'Service Unavailable', 'retry shortly'), json(200, { items }));
    expect(await client(fetch).listApiKeys()).toEqual(items);
    // Reading is safe to repeat: the 503 was retried.
    expect(sent.map((request) => `${request.method} ${request.url}`)).toEqual([`GET ${BASE}/v1/admin/keys`, `GET ${BASE}/v1/admin/keys`]);
  });

  it('rejects with the API error a key that is not an operator’s gets (404)', async () => {
    const { fetch } = recordingFetch(problem(404, 'Not Found', 'no route for GET /v1/admin/keys'));
    const failure = await client(fetch)
      .listApiKeys()
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ClipLineApiError);
    expect(failure).toMatchObject({ status: 404, problem: { detail: 'no route for GET /v1/admin/keys' } });
  });
});

describe('revokeApiKey', () => {
  it.each([
    ['an id', created.id, created.id],
    ['a prefix', created.prefix, created.prefix],
    ['a whole key, as its prefix so the secret stays out of request lines', created.key, created.prefix],
    ['a reference with spaces around it, trimmed', `  ${created.prefix}\n`, created.prefix],
    ['anything else, percent-encoded', 'a/b c', 'a%2Fb%20c'],
  ])('DELETEs the key named by %s', async (_case, reference, sentAs) => {
    const { fetch, sent } = recordingFetch(json(200, { outcome: 'revoked' }));
    expect(await client(fetch).revokeApiKey(reference)).toEqual({ outcome: 'revoked' });
    expect(sent.map((request) => `${request.method} ${request.url}`)).toEqual([`DELETE ${BASE}/v1/admin/keys/${sentAs}`]);
  });

  it('retries (revoking twice is harmless) and reports a key revoked before', async () => {
    const { fetch, sent } = recordingFetch(problem(502, 'Bad Gateway', 'proxy'), json(200, { outcome: 'already-revoked' }));
    expect(await client(fetch).revokeApiKey(created.prefix)).toEqual({ outcome: 'already-revoked' });
    expect(sent).toHaveLength(2);
  });

  it('rejects an unknown key with the 404, and an empty reference before sending anything', async () => {
    const { fetch, sent } = recordingFetch(problem(404, 'Not Found', 'no API key "cl_000000000000"'));
    await expect(client(fetch).revokeApiKey('cl_000000000000')).rejects.toMatchObject({ status: 404 });
    await expect(client(fetch).revokeApiKey('  ')).rejects.toThrow(TypeError);
    expect(sent).toHaveLength(1);
  });
});
