import { isRedisOrDatabaseOutage, storableText, type QueueActionsRepository } from '@clipline/shared';
import type { RequestHandler } from 'express';
import { roleOf } from './authentication.js';
import { sendProblem } from './problem.js';

/** Methods that only read: Bull Board's pages and its polling. */
const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * The queue a Bull Board API path names (`/api/queues/<queue>/<action>…`), decoded and storable;
 * `*` for none, which includes `/api/queues/pause` and `/api/queues/resume`: those pause or
 * resume every queue.
 */
function queueOfPath(path: string): string {
  // Express matches routes whatever their case: so does this.
  const raw = /^\/api\/queues\/([^/]+)\/./i.exec(path)?.[1];
  if (raw === undefined) return '*';
  let name = raw;
  try {
    name = decodeURIComponent(raw);
  } catch {
    // Left as sent.
  }
  return storableText(name).slice(0, 100);
}

/**
 * Writes every change asked of Bull Board's own API (a job retried, promoted, removed or added, a
 * queue emptied, cleaned, paused or obliterated) to the audit before Bull Board sees it, as the
 * overview's actions are: action `board`, the request as asked in `detail`. With the database
 * away the change is refused (503) rather than made unrecorded. The row is completed when the
 * answer is sent, with Bull Board's status when it refused or failed. Bull Board does not say how
 * many jobs a change touched: such rows count none, and the overview shows no count for them.
 */
export function auditBoardWrites(audit: QueueActionsRepository, actorName: string): RequestHandler {
  return async (req, res, next) => {
    // Every change that reaches Bull Board is one of its API's (whatever the path's case says).
    if (READS.has(req.method) || roleOf(res) !== 'admin') return next();
    const detail = storableText(`${req.method} ${req.path}`);
    let auditId: string;
    try {
      auditId = await audit.start({ actor: { name: actorName, kind: 'dashboard' }, action: 'board', queue: queueOfPath(req.path), reasonFilter: null, detail });
    } catch (error) {
      if (!isRedisOrDatabaseOutage(error)) return next(error);
      return sendProblem(res, 503, 'Service Unavailable', 'the audit cannot be written (database away); the action was not run; retry shortly', {
        'retry-after': '5',
      });
    }
    let settled = false;
    const settle = (error: string | undefined) => {
      if (settled) return;
      settled = true;
      audit.finish(auditId, { affected: 0, error }).catch(() => {});
    };
    res.once('finish', () => settle(res.statusCode >= 400 ? `Bull Board answered ${res.statusCode}` : undefined));
    res.once('close', () => settle('the connection closed before Bull Board answered'));
    return next();
  };
}
