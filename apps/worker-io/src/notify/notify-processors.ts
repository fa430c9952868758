import {
  enqueueWebhookDeliveries,
  PermanentJobError,
  type JobQueues,
  type notifyQueue,
  type Processors,
  type UsersRepository,
  type VideosRepository,
  type WebhooksRepository,
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

export function notifyProcessors(deps: NotifyDependencies): Processors<typeof notifyQueue> {
  return {
    'deliver-webhook': (job) => deliverWebhook(job.data.deliveryId, deps, { isLast: job.attemptsMade + 1 >= job.maxAttempts, signal: job.signal }),
    'sweep-webhooks': async () => {
      const stale = await deps.webhooks.stalePending(STALE_DELIVERY_SECONDS);
      await deps.webhooks.touch(stale);
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
