import { createHash, createHmac } from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import { type IdempotencyRepository, withRetries } from '@clipline/shared';
import { principalOf } from './auth.js';
import { HttpProblem } from './problem.js';

const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

/** Deeper than any request the API takes; a body nested past it is refused before it is walked. */
const MAX_BODY_DEPTH = 64;

/** The body with its keys sorted at every level, so the same request always has one fingerprint. */
function canonical(value: unknown, depth = 0): unknown {
  if (depth > MAX_BODY_DEPTH) {
    throw new HttpProblem(400, 'Bad Request', `the request body is nested more than ${MAX_BODY_DEPTH} levels deep`);
  }
  if (Array.isArray(value)) return value.map((item) => canonical(item, depth + 1));
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((key) => [key, canonical((value as Record<string, unknown>)[key], depth + 1)]),
    );
  }
  return value;
}

/**
 * Keyed (HMAC) rather than a plain digest: bodies may hold secrets such as a password, and the
 * fingerprint is stored; without the server's key it reveals nothing about the body.
 */
function fingerprint(req: Request, key: string, body: string, route = routeOf(req)): string {
  return createHmac('sha256', key).update(`${req.method} ${route}\n${body}`).digest('hex');
}

/**
 * The other fingerprints the same request had, made only when a stored one did not match: with
 * each earlier key of the keyring, and as releases before this one made them (the path as spelt).
 */
function earlierFingerprints(req: Request, body: string, currentKey: string, earlierKeys: readonly string[]): string[] {
  const spelt = `${req.baseUrl}${req.path}`;
  return [currentKey, ...earlierKeys].flatMap((each) => [...(each === currentKey ? [] : [fingerprint(req, each, body)]), fingerprint(req, each, body, spelt)]);
}

/**
 * The route a request reached and its parameters, not its spelling: express routes `/v1/videos/`
 * and `/v1/Videos` to the same handler, and a retry spelt either way is the same request.
 */
function routeOf(req: Request): string {
  const route = (req.route as { path?: unknown } | undefined)?.path;
  if (route === undefined) return `${req.baseUrl}${req.path}`;
  return `${req.baseUrl.toLowerCase()} ${String(route)} ${JSON.stringify(req.params)}`;
}

/**
 * The keys request fingerprints are made with, one per key of the keyring (`ACCOUNTS_KEYRING`),
 * the current one first: a key stored before a rotation (the new key put first), or by a replica
 * that has not rotated yet, is checked with the key it was made with. Each is derived from one
 * keyring entry as written, which for a keyring of one key is what earlier releases derived from
 * the whole text.
 */
export function fingerprintKeys(keyringText: string): string[] {
  const entries = keyringText
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
  const derive = (text: string) => createHash('sha256').update(`idempotency-fingerprint:${text}`).digest('hex');
  // Last, the key earlier releases derived from the whole text (a keyring of several keys, or spaces around one).
  return [...new Set([...entries.map(derive), derive(keyringText)])];
}

/**
 * `Idempotency-Key` on a POST: the first request with a key runs and its response is stored;
 * the same key with the same body replays that response; with another body → 422; while the
 * first is still running → 409. Responses the client may retry (5xx) are not stored.
 */
export function idempotent(
  repository: IdempotencyRepository,
  handler: RequestHandler,
  fingerprintKey: string | readonly string[] = 'clipline-idempotency',
): RequestHandler {
  const [currentKey = 'clipline-idempotency', ...earlierKeys] = typeof fingerprintKey === 'string' ? [fingerprintKey] : fingerprintKey;
  return async (req, res, next) => {
    const key = req.get('idempotency-key');
    if (key === undefined) return handler(req, res, next);
    if (!KEY_PATTERN.test(key)) {
      throw new HttpProblem(400, 'Bad Request', 'Idempotency-Key must be 1-255 visible ASCII characters');
    }
    const principal = principalOf(res);
    const body = JSON.stringify(canonical(req.body ?? null));
    const same = () => earlierFingerprints(req, body, currentKey, earlierKeys);
    const claim = await repository.claim(principal, key, fingerprint(req, currentKey, body), same).catch(() => {
      throw new HttpProblem(503, 'Service Unavailable', 'the database is unreachable; retry shortly', {}, { 'retry-after': '5' });
    });
    if (claim.outcome === 'mismatch') {
      throw new HttpProblem(422, 'Unprocessable Content', 'this Idempotency-Key was already used with a different request body');
    }
    if (claim.outcome === 'in-progress') {
      throw new HttpProblem(409, 'Conflict', 'a request with this Idempotency-Key is still being processed; retry later', {}, { 'retry-after': '1' });
    }
    if (claim.outcome === 'replay') {
      res.setHeader('idempotent-replayed', 'true');
      if (claim.location) res.location(claim.location);
      res.status(claim.status).json(claim.body);
      return;
    }
    const { token } = claim;
    captureResponse(res, async (status, body) => {
      if (status >= 500) await repository.release(principal, key, token);
      else await repository.complete(principal, key, token, status, body, locationOf(res));
    });
    try {
      await handler(req, res, next);
    } catch (error) {
      await repository.release(principal, key, token).catch(() => {});
      throw error;
    }
  };
}

function locationOf(res: Response): string | null {
  const location = res.getHeader('location');
  return typeof location === 'string' ? location : null;
}

/** A store is tried this often, about a second in all (100, 200, 400 ms between tries). */
const STORE_RETRIES = { attempts: 4, firstDelayMs: 100 };

/**
 * Stores the handler's JSON answer before it is sent, so a retry that follows at once replays it.
 * A store that fails is tried again: a key left in progress would let a retry after the lease
 * run the request a second time. Should it still fail, the answer is sent all the same.
 */
function captureResponse(res: Response, store: (status: number, body: unknown) => Promise<void>): void {
  const json = res.json.bind(res);
  res.json = (body: unknown) => {
    const status = res.statusCode;
    void withRetries(() => store(status, body), STORE_RETRIES)
      .catch(() => {})
      .then(() => json(body))
      // Outside the handler, nothing else would hear an answer that cannot be sent.
      .catch((error: unknown) => res.destroy(error as Error));
    return res;
  };
}
