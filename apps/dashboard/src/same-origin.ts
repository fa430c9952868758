import type { Request, RequestHandler } from 'express';
import { sendProblem } from './problem.js';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Why a state-changing request did not come from the dashboard's own pages, or undefined.
 *
 * Basic credentials ride along on any request the browser makes to this host, whichever page
 * starts it, so a foreign page could otherwise make a signed-in operator's browser retry, clean
 * or obliterate queues. Browsers mark such requests: `Sec-Fetch-Site` says where they came from,
 * and `Origin` names the page's origin on every POST, PUT, PATCH and DELETE. Clients that send
 * neither (curl, scripts) are not browsers acting for someone else, and are let through.
 */
export function crossOriginReason(req: Request): string | undefined {
  const site = req.get('sec-fetch-site');
  if (site === 'cross-site' || site === 'same-site') return `Sec-Fetch-Site is "${site}": the request was started by another site's page`;

  const origin = req.get('origin');
  if (origin === undefined) return undefined;
  const host = req.get('host')?.toLowerCase();
  let presented: URL;
  try {
    presented = new URL(origin);
  } catch {
    return `Origin "${origin}" is not the dashboard's own origin`;
  }
  // Unless the proxy in front is named in TRUST_PROXY, `req.protocol` cannot see TLS it ended:
  // an https origin on our own Host is ours too. The host must match exactly, port included.
  const ownScheme = presented.protocol === `${req.protocol}:` || presented.protocol === 'https:';
  if (!host || !ownScheme || presented.host.toLowerCase() !== host) return `Origin "${origin}" is not the dashboard's own origin`;
  return undefined;
}

/** Refuses cross-origin writes with 403 before authentication, so they never reach Bull Board. */
export const refuseCrossOriginWrites: RequestHandler = (req, res, next) => {
  if (SAFE_METHODS.has(req.method)) return next();
  const reason = crossOriginReason(req);
  if (reason) return sendProblem(res, 403, 'Forbidden', `cross-origin ${req.method} refused: ${reason}`);
  return next();
};
