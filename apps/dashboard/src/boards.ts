import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { RequestHandler } from 'express';
import type { Queue } from 'bullmq';
import { roleOf } from './authentication.js';

/** One Bull Board over `queues`, served at `/` of whatever mounts it. */
function bullBoard(queues: readonly Queue[], description: string, readOnlyMode: boolean): RequestHandler {
  const server = new ExpressAdapter();
  server.setBasePath('/');
  createBullBoard({
    queues: queues.map((queue) => new BullMQAdapter(queue, { description, readOnlyMode })),
    serverAdapter: server,
    options: { uiConfig: { boardTitle: readOnlyMode ? 'clipline (read-only)' : 'clipline' } },
  });
  const router = server.getRouter();
  // Bull Board's own express app answers directly: it says nothing of what serves it either.
  if ('disable' in router && typeof router.disable === 'function') router.disable('x-powered-by');
  return router;
}

/**
 * Bull Board as each role should see it, on the same URLs. The admin gets the full board. The
 * viewer gets a second board built with `readOnlyMode`, so its UI hides the retry, clean, pause
 * and obliterate buttons and Bull Board itself refuses those routes (405); the server-side 403
 * of `refuseViewerWrites`, mounted before this, is what the viewer's writes actually meet.
 */
export function boardForRole(queues: readonly Queue[], description: string, viewerEnabled: boolean): RequestHandler {
  const admin = bullBoard(queues, description, false);
  const viewer = viewerEnabled ? bullBoard(queues, description, true) : undefined;
  return (req, res, next) => {
    const role = roleOf(res);
    if (role === 'admin') return admin(req, res, next);
    if (viewer) return viewer(req, res, next);
    // A viewer role without a viewer account cannot be signed in; refuse rather than fall back.
    return next(new Error('viewer signed in but no viewer board was built'));
  };
}
