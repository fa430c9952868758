import { FlowProducer, type ConnectionOptions, type FlowJob, type JobsOptions } from 'bullmq';
import { isRedisOrDatabaseOutage } from '../errors.js';
import type { QueueDeclaration } from '../queues/define.js';
import { queueTelemetry } from '../telemetry/spans.js';
import { withRequestId } from '../telemetry/request-context.js';
import { jobOptions, validatePayload } from './payload.js';
import { QueueRegistry, type QueueContext } from './queue-registry.js';

/** One job of a flow: which queue and job, its payload, and the id that makes adding it idempotent. */
export interface FlowStep {
  declaration: QueueDeclaration;
  jobName: string;
  data: unknown;
  jobId: string;
}

export interface ChainOptions {
  /** BullMQ priority of every job of the chain (1 is the highest). */
  priority?: number;
  /** Milliseconds before the first step may start. */
  delayMs?: number;
}

/** A parent job whose steps run one after another before it. */
export interface Chain {
  parent: FlowStep;
  /** In the order they run; may be empty (a flow of the parent alone). */
  steps: readonly FlowStep[];
  options?: ChainOptions;
}

/**
 * Enqueues chains as BullMQ flows: each step is the only child of the next, so it runs only after
 * the one before it (BullMQ runs the deepest child first), and a failed step fails the parent.
 * Job ids come with the steps, so enqueuing the same chain twice adds nothing.
 */
export class FlowEnqueuer {
  private readonly flows: FlowProducer;
  private readonly registry: QueueRegistry;

  constructor(context: QueueContext) {
    this.flows = new FlowProducer({ connection: context.connection as ConnectionOptions, prefix: context.prefix, telemetry: queueTelemetry() });
    this.flows.on('error', () => {});
    this.registry = new QueueRegistry(context);
  }

  /** Many chains in one Redis round trip (a MULTI of every job of every flow). */
  async addChains(chains: readonly Chain[]): Promise<void> {
    if (chains.length) await this.flows.addBulk(chains.map(chainToFlow));
  }

  /**
   * Removes a chain's parent and every child that is not running. Running children cannot be
   * removed (they hold a lock); they are stopped through cancellation signals instead. False
   * when nothing was removed; Redis unreachable is thrown, so the caller may try again.
   */
  async removeChain(parent: Pick<FlowStep, 'declaration' | 'jobId'>): Promise<boolean> {
    try {
      return (await this.registry.queue(parent.declaration).remove(parent.jobId, { removeChildren: true })) === 1;
    } catch (error) {
      if (isRedisOrDatabaseOutage(error)) throw error;
      return false;
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.flows.close(), this.registry.close()]);
  }
}

function chainToFlow({ parent, steps, options = {} }: Chain): FlowJob {
  const node = (step: FlowStep, extra: JobsOptions, children: FlowJob[] | undefined): FlowJob => ({
    name: step.jobName,
    queueName: step.declaration.name,
    data: withRequestId(validatePayload(step.declaration, step.jobName, step.data)),
    opts: jobOptions(step.declaration, { jobId: step.jobId, ...(options.priority ? { priority: options.priority } : {}), ...extra }),
    ...(children ? { children } : {}),
  });
  let children: FlowJob[] | undefined;
  // Built from the first step outwards: step k is the only child of step k+1.
  steps.forEach((step, index) => {
    const delay = index === 0 && options.delayMs ? { delay: options.delayMs } : {};
    children = [node(step, { failParentOnFailure: true, ...delay }, children)];
  });
  return node(parent, {}, children);
}
