/**
 * Request ids, request logs and the request-duration histogram of the API.
 *
 * Every request gets an id: the caller's `x-request-id` when it is a sane one (bounded, plain
 * characters), a fresh UUID otherwise. It is echoed in the response header, is on the request's
 * log line, and travels with the jobs the request enqueues (see `runWithRequestId`), so a
 * worker's lines about those jobs carry it too.
 */
import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { Histogram, type Logger, type Registry, runWithRequestId } from '@clipline/shared';

export const REQUEST_ID_HEADER = 'x-request-id';
/** Ids a caller may choose: what log search and header echoing can take without escaping. */
const SANE_REQUEST_ID = /^[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,127}$/;
const HISTOGRAM_NAME = 'clipline_http_request_duration_seconds';
/** Liveness and readiness probes come every few seconds: their lines are debug, not info. */
const PROBES = new Set(['/healthz', '/readyz']);

export function requestIdOf(header: string | string[] | undefined): string {
  const given = Array.isArray(header) ? header[0] : header;
  return given && SANE_REQUEST_ID.test(given) ? given : randomUUID();
}

/** Calls `seen` with every value assigned to `object[key]`, which keeps working as a plain property. */
function watchProperty<T>(object: object, key: string, seen: (value: T) => void): void {
  let current = (object as Record<string, unknown>)[key] as T;
  Object.defineProperty(object, key, {
    configurable: true,
    enumerable: true,
    get: () => current,
    set: (value: T) => {
      current = value;
      seen(value);
    },
  });
}

function requestDurations(registry: Registry): Histogram<'method' | 'route' | 'status_code'> {
  const existing = registry.getSingleMetric(HISTOGRAM_NAME);
  if (existing) return existing as Histogram<'method' | 'route' | 'status_code'>;
  return new Histogram({
    name: HISTOGRAM_NAME,
    help: 'Time from receiving an API request to the end of its response, by route pattern and status',
    labelNames: ['method', 'route', 'status_code'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
}

/**
 * Mints or accepts the request id, echoes it, and logs and times the request once its response
 * is done (or the client went away). Goes first, before the body is parsed.
 */
export function requestLog(options: { logger: Logger; metrics: Registry }): RequestHandler {
  const durations = requestDurations(options.metrics);
  return (req: Request, res: Response, next: NextFunction) => {
    const requestId = requestIdOf(req.headers[REQUEST_ID_HEADER]);
    const started = process.hrtime.bigint();
    res.locals.requestId = requestId;
    res.setHeader(REQUEST_ID_HEADER, requestId);
    // The route pattern is taken when the router assigns the matched route, while req.baseUrl is
    // still the matching router's mount path: routers put baseUrl back on the way out, and an
    // error answered by the app's handler would otherwise lose the mount path.
    // Mount paths are matched in any letter case and reported as the client spelt them: they are
    // all literal, so lower case gives the mount itself, one label however it is spelt (a label
    // per spelling let any caller grow the series without bound).
    let route: string | undefined;
    watchProperty(req, 'route', (value: { path?: unknown } | undefined) => {
      if (value?.path !== undefined) route = `${req.baseUrl.toLowerCase()}${String(value.path)}`;
    });
    // A request no route took (refused by a router's middleware) is labelled by the deepest router it entered.
    let mount = '';
    watchProperty(req, 'baseUrl', (value: string | undefined) => {
      if (value && value.length > mount.length) mount = value.toLowerCase();
    });
    let logged = false;
    const done = () => {
      if (logged) return;
      logged = true;
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const label = route ?? (mount ? `${mount}/*` : 'unmatched');
      const status = res.writableFinished ? res.statusCode : 499;
      durations.observe({ method: req.method, route: label, status_code: String(status) }, seconds);
      const fields = { method: req.method, route: label, path: req.path.slice(0, 200), status, durationMs: Math.round(seconds * 1000) };
      // Inside the request's context, so the line gets its requestId from the logger's mixin.
      runWithRequestId(requestId, () => {
        // A probe's 503 is its answer (not ready yet), not a failure: /readyz logs what changed.
        if (PROBES.has(label)) options.logger.debug(fields, 'request completed');
        else if (status >= 500) options.logger.error(fields, 'request failed');
        else options.logger.info(fields, 'request completed');
      });
    };
    res.once('finish', done);
    res.once('close', done);
    next();
  };
}

/**
 * Runs the rest of the request's handling with its id as the current one. Mounted after the body
 * parser: its callback comes from the socket's events, which do not keep the context it was set in.
 */
export function requestContext(): RequestHandler {
  return (_req: Request, res: Response, next: NextFunction) => runWithRequestId(res.locals.requestId as string | undefined, next);
}
