import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { HttpProblem } from './problem.js';

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * `Authorization: Bearer <key>` against the configured keys. Keys are compared as SHA-256
 * digests in constant time, so neither a key's content nor its length leaks through timing.
 */
export function requireApiKey(keys: readonly string[]): RequestHandler {
  const digests = keys.map(digest);
  return (req, _res, next) => {
    const header = req.get('authorization');
    const challenge = { 'www-authenticate': 'Bearer realm="clipline"' };
    if (!header) return next(new HttpProblem(401, 'Unauthorized', 'missing Authorization header: send "Authorization: Bearer <api key>"', {}, challenge));
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match?.[1]) return next(new HttpProblem(401, 'Unauthorized', 'Authorization header must be "Bearer <api key>"', {}, challenge));
    const presented = digest(match[1]);
    let accepted = false;
    for (const candidate of digests) accepted = timingSafeEqual(candidate, presented) || accepted;
    if (!accepted) return next(new HttpProblem(401, 'Unauthorized', 'API key is not valid', {}, challenge));
    return next();
  };
}
