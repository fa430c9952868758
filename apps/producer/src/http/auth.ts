import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler, Response } from 'express';
import { ANY_TENANT, clientAddress, tenantScope, type AuthFailureThrottle, type TenantScope } from '@clipline/shared';
import { HttpProblem, serviceUnavailable } from './problem.js';

const digest = (value: string) => createHash('sha256').update(value).digest();

/** The authenticated caller: its key, tenant and role. */
export interface Caller {
  /** A stable id of the key (never the key): `config:<digest>` or `key:<id>`. */
  principal: string;
  tenant: string;
  /** Operators: they see and act on every tenant's work. */
  admin: boolean;
  /** The name a key stored in the database was created with (audits name who acted). */
  name?: string;
}

/** A key kept in the database, looked up by the key itself. */
export type KeyVerifier = (presented: string) => Promise<{ id: string; name: string; tenant: string; role: 'tenant' | 'admin' } | null>;

export function callerOf(res: Response): Caller {
  const caller = res.locals.caller as Caller | undefined;
  if (!caller) throw new Error('callerOf called on a request that was not authenticated');
  return caller;
}

/** The caller the request acts for (an API key id), set by {@link requireApiKey}. */
export function principalOf(res: Response): string {
  return callerOf(res).principal;
}

/** What the caller may see: its tenant's resources, or every tenant's for an admin key. */
export function scopeOf(res: Response): TenantScope {
  const caller = callerOf(res);
  return caller.admin ? ANY_TENANT : tenantScope(caller.tenant);
}

export interface ApiKeySettings {
  /** `API_KEYS`: each key is a tenant of its own, `key-<digest>`. */
  keys: readonly string[];
  /** `ADMIN_API_KEYS`: operators, each in a tenant `admin-<digest>` for what it submits. */
  adminKeys: readonly string[];
  /** Keys created with `clipline keys create`, kept hashed in the database. */
  verify?: KeyVerifier;
  /** Failed authentications per client address; checked before any key is looked up. */
  throttle?: AuthFailureThrottle;
  /**
   * For a key of the configuration: whether its address is throttled, without counting an
   * attempt (accepting such a key needs no lookup to protect). Without it, such keys reserve an
   * attempt like any other.
   */
  probe?: KnownKeyProbe;
}

/** Seconds the address must still wait before a key of the configuration is accepted (0: go on). */
export interface KnownKeyProbe {
  retryAfter(address: string, caller: Caller, res: Response): Promise<number>;
}

const tooManyFailures = (wait: number) =>
  new HttpProblem(429, 'Too Many Requests', `too many failed authentications from this address; retry in ${wait} s`, {}, { 'retry-after': String(wait) });

/**
 * Stored keys accepted lately, by SHA-256 digest (never the key), the least recently used
 * forgotten past `limit`. A request with such a key is checked against its address's failure
 * count without reserving an attempt, like a key of the configuration, so one client may send a
 * stored key on more requests at once than AUTH_FAILURES_PER_MINUTE (each in-flight reservation
 * counted as a failure until it was settled). The key is still looked up on every request, so a
 * revocation takes effect at once. Guesses are never remembered: only keys the database accepted.
 */
class RememberedKeys {
  private readonly callers = new Map<string, Caller>();

  constructor(private readonly limit = 10_000) {}

  get(hex: string | undefined): Caller | undefined {
    return hex === undefined ? undefined : this.callers.get(hex);
  }

  remember(hex: string, caller: Caller): Caller {
    this.callers.delete(hex);
    this.callers.set(hex, caller);
    if (this.callers.size > this.limit) this.callers.delete(this.callers.keys().next().value as string);
    return caller;
  }

  forget(hex: string): undefined {
    this.callers.delete(hex);
    return undefined;
  }
}

/**
 * Keys kept hashed in the database, looked up on every request that presents one. A lookup that
 * fails (the database away) is a 503 to retry, not a key refused: answered 401, a valid key would
 * look revoked, and its address would soon be throttled for failed authentications.
 */
class StoredKeys {
  readonly remembered = new RememberedKeys();

  constructor(private readonly verify: KeyVerifier | undefined) {}

  /** The caller of a stored key, or undefined for a key the database does not hold (or revoked). */
  async lookUp(key: string): Promise<Caller | undefined> {
    let found: Awaited<ReturnType<KeyVerifier>> | undefined;
    try {
      found = await this.verify?.(key);
    } catch {
      throw serviceUnavailable('API keys cannot be checked now (the database is unreachable); retry shortly');
    }
    return found ? { principal: `key:${found.id}`, tenant: found.tenant, admin: found.role === 'admin', name: found.name } : undefined;
  }

  /** A stored key accepted before: looked up again (a revocation counts at once), without reserving an attempt. */
  async recheck(key: string, hex: string): Promise<Caller | undefined> {
    const caller = await this.lookUp(key);
    return caller ? this.remembered.remember(hex, caller) : this.remembered.forget(hex);
  }
}

const BEARER = /^Bearer\s+([\x21-\x7e]{1,512})\s*$/i;

/**
 * `Authorization: Bearer <key>`: keys from the configuration (compared as SHA-256 digests in
 * constant time, so neither content nor length leaks through timing) or keys stored hashed in
 * the database. A client address that failed too often this minute is answered 429 whatever key
 * it sends, before any database lookup, so guessing costs a Redis round trip and never a database
 * query. A key of the configuration (a local comparison) is only checked against the count
 * through `probe`; any other key reserves an attempt first, given back if the key is accepted.
 */
export function requireApiKey(settings: ApiKeySettings): RequestHandler {
  const configured = [...settings.keys.map((key) => ({ key, admin: false })), ...settings.adminKeys.map((key) => ({ key, admin: true }))].map(
    ({ key, admin }) => {
      const hex = digest(key).toString('hex').slice(0, 12);
      return { digest: digest(key), caller: { principal: `config:${hex}`, tenant: `${admin ? 'admin' : 'key'}-${hex}`, admin } };
    },
  );
  const challenge = { 'www-authenticate': 'Bearer realm="clipline"' };
  /** The configured key presented, compared with every one in constant time; undefined for any other. */
  const configuredCaller = (presented: Buffer): Caller | undefined => {
    let caller: Caller | undefined;
    for (const candidate of configured) if (timingSafeEqual(candidate.digest, presented)) caller = candidate.caller;
    return caller;
  };
  const stored = new StoredKeys(settings.verify);
  return async (req, res, next) => {
    // req.ip: the TCP peer, or the client a trusted proxy (TRUST_PROXY) forwarded for.
    const address = clientAddress(req.ip ?? req.socket.remoteAddress);
    const header = req.get('authorization');
    const match = header ? BEARER.exec(header) : null;
    const presented = match?.[1] ? digest(match[1]) : undefined;
    const hex = presented?.toString('hex');
    const known = presented && settings.probe ? (configuredCaller(presented) ?? stored.remembered.get(hex)) : undefined;
    if (known && settings.probe) {
      const wait = await settings.probe.retryAfter(address, known, res);
      if (wait > 0) return next(tooManyFailures(wait));
      let caller: Caller | undefined;
      try {
        caller = known.principal.startsWith('key:') ? await stored.recheck(match?.[1] ?? '', hex ?? '') : known;
      } catch (error) {
        return next(error);
      }
      if (caller) {
        res.locals.caller = caller;
        return next();
      }
      // No longer valid (revoked): checked again below as any unknown key, and counted if refused.
    }
    const attempt = await settings.throttle?.reserve(address);
    if (attempt && attempt.retryAfter > 0) return next(tooManyFailures(attempt.retryAfter));
    // The reserved attempt stays counted as a failure unless the key is accepted.
    const refuse = (detail: string) => next(new HttpProblem(401, 'Unauthorized', detail, {}, challenge));
    if (!header) return refuse('missing Authorization header: send "Authorization: Bearer <api key>"');
    if (!match?.[1] || !presented) return refuse('Authorization header must be "Bearer <api key>"');
    let caller = configuredCaller(presented);
    if (!caller && settings.verify) {
      try {
        caller = await stored.lookUp(match[1]);
      } catch (error) {
        // Not a failed authentication: the attempt is given back.
        await attempt?.release();
        return next(error);
      }
    }
    if (!caller) return refuse('API key is not valid');
    if (caller.principal.startsWith('key:') && hex) stored.remembered.remember(hex, caller);
    await attempt?.release();
    res.locals.caller = caller;
    return next();
  };
}

/** Admin keys only: anyone else is told the route does not exist, in the words the app's own 404 uses. */
export const requireAdmin: RequestHandler = (req, res, next) => {
  if (callerOf(res).admin) return next();
  return next(new HttpProblem(404, 'Not Found', `no route for ${req.method} ${`${req.baseUrl}${req.path}`.slice(0, 200)}`));
};
