import { Queue, type ConnectionOptions } from 'bullmq';
import type { RedisClient } from '../redis.js';
import { queueTelemetry } from '../telemetry/spans.js';
import type { QueueDeclaration } from '../queues/define.js';

export interface QueueContext {
  connection: RedisClient;
  prefix: string;
}

export function createQueue(declaration: QueueDeclaration, context: QueueContext): Queue {
  const queue = new Queue(declaration.name, {
    connection: context.connection as ConnectionOptions,
    prefix: context.prefix,
    defaultJobOptions: declaration.defaultJobOptions,
    telemetry: queueTelemetry(),
  });
  // Connection errors surface on the calls that need Redis; the event would only be noise.
  queue.on('error', () => {});
  return queue;
}

/** One BullMQ Queue object per declared queue, made on first use and closed together. */
export class QueueRegistry {
  private readonly queues = new Map<string, Queue>();

  constructor(private readonly context: QueueContext) {}

  queue(declaration: QueueDeclaration): Queue {
    let queue = this.queues.get(declaration.name);
    if (!queue) {
      queue = createQueue(declaration, this.context);
      this.queues.set(declaration.name, queue);
    }
    return queue;
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((queue) => queue.close()));
  }
}

/**
 * Counts of jobs per state for one queue, as the readiness and metrics endpoints report them.
 * No `paused` state: BullMQ 6 removed it (a paused queue's jobs count as waiting there).
 */
export async function queueCounts(queue: Queue): Promise<Record<string, number>> {
  return queue.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed', 'waiting-children', 'prioritized');
}
