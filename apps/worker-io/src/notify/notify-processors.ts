import {
  enqueueWebhookDeliveries,
  PermanentJobError,
  type JobQueues,
  notifyQueue,
  type Processors,
  type UsersRepository,
  type VideosRepository,
  type WebhooksRepository,
  webhookJobId,
} from '@clipline/shared';
import { deliverWebhook, type WebhookSettings } from './deliver-webhook.js';

/** Deliveries still pending this long are sent again by the sweep (their own job was lost). */
const STALE_DELIVERY_SECONDS = 15;

export interface NotifyDependencies {
  webhooks: WebhooksRepository;
  videos: VideosRepository;
  users: UsersRepository;
  jobs: JobQueues;
  settings: WebhookSettings;
}

/**
 * A pending delivery whose job has ended without settling it (failed for good on stalls, a
 * crashing worker's, which record no attempt) would keep its job id, and an add under that id is
 * ignored while the ended job is kept (a week): the ended job is removed so the sweep's add sends
 * the delivery again. Its failure counts as one of the delivery's attempts, so a delivery whose
 * jobs keep dying fails after as many as a job has. A job still waiting, delayed or running is
 * left to finish.
 */
async function clearEndedJobs(deps: Pick<NotifyDependencies, 'jobs' | 'webhooks'>, deliveryIds: readonly string[]): Promise<void> {
  const maxAttempts = notifyQueue.defaultJobOptions?.attempts ?? 1;
  await Promise.all(
    deliveryIds.map(async (deliveryId) => {
      const job = await deps.jobs.get(notifyQueue, webhookJobId(deliveryId));
      if (job?.state !== 'failed' && job?.state !== 'completed') return;
      const delivery = job.state === 'failed' ? await deps.webhooks.find(deliveryId) : undefined;
      if (delivery?.state === 'pending') {
        const error = `its delivery job ended without sending it: ${job.failedReason ?? 'no reason given'}`;
        await deps.webhooks.recordAttempt(deliveryId, { statusCode: null, error, durationMs: 0 }, delivery.attempts + 1 >= maxAttempts ? 'failed' : 'retry');
      }
      await deps.jobs.remove(notifyQueue, job.id);
    }),
  );
}

export function notifyProcessors(deps: NotifyDependencies): Processors<typeof notifyQueue> {
  return {
    'deliver-webhook': (job) => deliverWebhook(job.data.deliveryId, deps, { isLast: job.attemptsMade + 1 >= job.maxAttempts, signal: job.signal }),
    'sweep-webhooks': async () => {
      const stale = await deps.webhooks.stalePending(STALE_DELIVERY_SECONDS);
      await deps.webhooks.touch(stale);
      await clearEndedJobs(deps, stale);
      await enqueueWebhookDeliveries(deps.jobs, stale);
      return { requeued: stale.length };
    },
    // The welcome is recorded once per user (retries and duplicates are no-ops); the delivery
    // channel is the log line, which operators route to their mailer.
    'send-welcome': async (job) => {
      const user = await deps.users.find(job.data.userId);
      if (!user) throw new PermanentJobError(`user ${job.data.userId} does not exist`);
      if (user.status !== 'active') throw new PermanentJobError(`user ${user.id} is ${user.status}, not active`);
      const first = await deps.users.markWelcomed(user.id);
      if (first) job.logger.info({ userId: user.id, email: user.email }, 'welcome notification sent');
      return { welcomed: first };
    },
  };
}
