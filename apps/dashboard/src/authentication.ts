import { clientAddress, type AuthFailureThrottle } from '@clipline/shared';
import type { RequestHandler, Response } from 'express';
import type { DashboardRole, PresentedCredentials } from './accounts.js';
import { sendProblem } from './problem.js';

const CHALLENGE = { 'www-authenticate': 'Basic realm="clipline dashboard", charset="UTF-8"' };

export interface DashboardAuthentication {
  /** Reads the `Authorization` header; see {@link accountVerifier}. */
  verify: (authorization: string | undefined) => PresentedCredentials;
  /** Failed sign-ins per client address, shared by every dashboard replica through Redis. */
  throttle: AuthFailureThrottle;
}

/**
 * HTTP Basic sign-in for everything mounted after it. In this order:
 * 1. An address over its failure budget is answered 429 with `Retry-After` before its header is
 *    even read, so a guesser learns nothing more, not even from a right guess, until the minute ends.
 * 2. A request without `Authorization` is answered 401 and not counted: it is how a browser asks
 *    for the login prompt (its first request never carries credentials), and it tries nothing.
 * 3. Any header that names no account (wrong user or password, malformed, another scheme) is
 *    counted as one failure, then answered 401.
 * The address is the TCP peer, or, for a request from a proxy named in TRUST_PROXY, the client
 * it forwarded for (`X-Forwarded-For` from anyone else is ignored, so it cannot be forged to
 * spread guesses over made-up addresses). Behind a proxy not named there, every client shares
 * the proxy's budget.
 */
export function requireDashboardAccount({ verify, throttle }: DashboardAuthentication): RequestHandler {
  return async (req, res, next) => {
    const attempt = await throttle.reserve(clientAddress(req.ip ?? req.socket.remoteAddress));
    if (attempt.retryAfter > 0) {
      const wait = attempt.retryAfter;
      return sendProblem(res, 429, 'Too Many Requests', `too many failed sign-ins from this address; try again in ${wait} s`, { 'retry-after': String(wait) });
    }
    const presented = verify(req.get('authorization'));
    if (presented.kind === 'absent') {
      await attempt.release();
      return sendProblem(res, 401, 'Unauthorized', 'dashboard credentials required (DASHBOARD_USER / DASHBOARD_PASSWORD, or the viewer account)', CHALLENGE);
    }
    // A rejected header keeps its reserved attempt: it is one failure.
    if (presented.kind === 'rejected') return sendProblem(res, 401, 'Unauthorized', 'dashboard credentials are not valid', CHALLENGE);
    await attempt.release();
    res.locals.dashboardRole = presented.role;
    return next();
  };
}

/** The role {@link requireDashboardAccount} signed the request in with. */
export function roleOf(res: Response): DashboardRole {
  const role = res.locals.dashboardRole as DashboardRole | undefined;
  // Reaching a route without a role is a wiring mistake, never a reason to let a request act.
  if (role !== 'admin' && role !== 'viewer') throw new Error('roleOf called on a request that was not authenticated');
  return role;
}

/**
 * The viewer's guard: anything but GET and HEAD is refused with 403 on the server, whatever the
 * read-only UI shows or hides, so a hand-written `curl -X PUT …/retry` fails the same way.
 */
export const refuseViewerWrites: RequestHandler = (req, res, next) => {
  if (roleOf(res) === 'viewer' && req.method !== 'GET' && req.method !== 'HEAD') {
    return sendProblem(res, 403, 'Forbidden', `the viewer account is read-only; ${req.method} ${req.path} needs the admin account`);
  }
  return next();
};
