import express, { type Router } from 'express';
import { z } from 'zod';
import type { QueueOperationKind, QueueOperations } from '@clipline/shared';
import { describeIssues } from '../api-schemas.js';
import { callerOf, requireAdmin } from '../http/auth.js';
import { badRequest, notFound, serviceUnavailable } from '../http/problem.js';
import { isUnavailable, requireJson } from './route-helpers.js';

export const failedJobsFilter = z
  .strictObject({
    reason: z
      .string()
      .max(500, 'reason is longer than 500 characters')
      .optional()
      .describe('Only failed jobs whose failure reason contains this text (case-sensitive); absent or empty: every failed job of the queue'),
  })
  .meta({ id: 'FailedJobsFilter' });

/** The path's last segment after the colon, as the admin API names the actions. */
const ACTIONS: Record<string, QueueOperationKind> = {
  'failed:retry': 'retry-failed',
  'failed:discard': 'discard-failed',
};

/**
 * Operators' queue actions: retry or discard a queue's failed jobs matching a reason, pause and
 * resume a queue. Each is written to the audit with the admin key that asked. Other keys are told
 * these routes do not exist, like every admin route.
 */
export function adminQueueRoutes(deps: { operations: QueueOperations }): Router {
  const router = express.Router();
  router.use('/admin/queues', requireAdmin);

  const act = async (queue: string, action: QueueOperationKind, reason: string | null, res: express.Response) => {
    if (!deps.operations.has(queue)) throw notFound(`no queue "${queue.slice(0, 60)}"`);
    const caller = callerOf(res);
    const outcome = await deps.operations
      .run(queue, action, { actor: { name: caller.name ?? caller.principal, kind: 'api-key', tenant: caller.tenant }, reason })
      .catch((error: unknown) => {
        throw isUnavailable(error) ? serviceUnavailable('the database or Redis is unreachable; retry shortly') : error;
      });
    res.json(outcome);
  };

  // "failed:retry", "failed:discard", ":pause", ":resume": the colons are literal, not parameters.
  router.post(/^\/admin\/queues\/([^/:]+)\/(failed:retry|failed:discard)$/, async (req, res) => {
    const params = req.params as unknown as Record<string, string>;
    // No body is "every failed job"; a body that is not JSON is refused, never read as none.
    const empty = req.headers['transfer-encoding'] === undefined && !Number(req.headers['content-length'] ?? 0);
    const parsed = failedJobsFilter.safeParse(empty ? {} : requireJson(req));
    if (!parsed.success) {
      const { detail, errors } = describeIssues(parsed.error);
      throw badRequest(detail, errors);
    }
    await act(String(params[0]), ACTIONS[String(params[1])] as QueueOperationKind, parsed.data.reason ?? null, res);
  });
  router.post(/^\/admin\/queues\/([^/:]+):(pause|resume)$/, async (req, res) => {
    const params = req.params as unknown as Record<string, string>;
    await act(String(params[0]), params[1] === 'pause' ? 'pause' : 'resume', null, res);
  });
  return router;
}
