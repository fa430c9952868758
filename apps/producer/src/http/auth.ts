import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler, Response } from 'express';
import { ANY_TENANT, tenantScope, type TenantScope } from '@clipline/shared';
import { HttpProblem } from './problem.js';

const digest = (value: string) => createHash('sha256').update(value).digest();

/** A key kept in the database, looked up by the key itself. */
export type KeyVerifier = (presented: string) => Promise<{ id: string; name: string } | null>;

/** The caller the request acts for (an API key id), set by {@link requireApiKey}. */
export function principalOf(res: Response): string {
  return String(res.locals.principal ?? 'anonymous');
}

/** What the caller may see: its tenant's resources, or every tenant's for an admin key. */
export function scopeOf(res: Response): TenantScope {
  const caller = res.locals.caller as Caller | undefined;
  if (!caller) throw new Error('scopeOf called on a request that was not authenticated');
  return caller.admin ? ANY_TENANT : tenantScope(caller.tenant);
}

/** The authenticated caller: its key, tenant and role. */
export interface Caller {
  principal: string;
  tenant: string;
  admin: boolean;
}

export function callerOf(res: Response): Caller {
  const caller = res.locals.caller as Caller | undefined;
  if (!caller) throw new Error('callerOf called on a request that was not authenticated');
  return caller;
}

/**
 * `Authorization: Bearer <key>`: keys from the configuration (compared as SHA-256 digests in
 * constant time, so neither content nor length leaks through timing) or keys stored hashed in
 * the database. The principal is a stable id of the key, never the key.
 */
export function requireApiKey(staticKeys: readonly string[], verify?: KeyVerifier): RequestHandler {
  const digests = staticKeys.map((key) => ({ digest: digest(key), principal: `config:${digest(key).toString('hex').slice(0, 12)}` }));
  const challenge = { 'www-authenticate': 'Bearer realm="clipline"' };
  return async (req, res, next) => {
    const header = req.get('authorization');
    if (!header) return next(new HttpProblem(401, 'Unauthorized', 'missing Authorization header: send "Authorization: Bearer <api key>"', {}, challenge));
    const match = /^Bearer\s+([\x21-\x7e]{1,512})\s*$/i.exec(header);
    if (!match?.[1]) return next(new HttpProblem(401, 'Unauthorized', 'Authorization header must be "Bearer <api key>"', {}, challenge));
    const presented = digest(match[1]);
    let principal: string | undefined;
    for (const candidate of digests) if (timingSafeEqual(candidate.digest, presented)) principal = candidate.principal;
    if (!principal && verify) {
      const stored = await verify(match[1]).catch(() => null);
      if (stored) principal = `key:${stored.id}`;
    }
    if (!principal) return next(new HttpProblem(401, 'Unauthorized', 'API key is not valid', {}, challenge));
    res.locals.principal = principal;
    return next();
  };
}
