import type { JobQueues } from '../jobs/job-queues.js';
import { notifyQueue } from '../queues/notify.js';

/**
 * Hands outbox rows to the notify queue now. Job ids derive from the delivery, so enqueuing one
 * twice (here and by the sweeper) sends it once.
 */
export async function enqueueWebhookDeliveries(jobs: JobQueues, deliveryIds: readonly string[]): Promise<void> {
  await Promise.all(deliveryIds.map((deliveryId) => jobs.add(notifyQueue, 'deliver-webhook', { deliveryId }, { jobId: webhookJobId(deliveryId) })));
}

/** The id of a delivery's job: one job per delivery, however often it is enqueued. */
export function webhookJobId(deliveryId: string): string {
  return `webhook-${deliveryId}`;
}
