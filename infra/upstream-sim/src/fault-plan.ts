import type { EndpointFaults, Latency } from './fault-config.js';
import type { SeededRandom } from './seeded-random.js';

/** What happens to one request, decided when it arrives. */
export interface FaultPlan {
  /** Milliseconds before the answer. */
  delayMs: number;
  outcome: 'timeout' | 'rate-limited' | 'server-error' | 'malformed' | 'normal';
  /** Bytes per second of the body, when it is throttled. */
  bytesPerSecond: number | null;
}

function drawLatency(latency: Latency, random: SeededRandom): number {
  // Two draws every time, whatever the kind, so switching distributions keeps later decisions aligned.
  const first = random.next();
  const second = random.next();
  switch (latency.kind) {
    case 'none':
      return 0;
    case 'fixed':
      return latency.ms;
    case 'uniform':
      return latency.minMs + (latency.maxMs - latency.minMs) * first;
    case 'normal': {
      const u1 = Math.max(first, Number.EPSILON);
      const gaussian = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * second);
      return Math.max(0, latency.meanMs + latency.stdDevMs * gaussian);
    }
  }
}

/**
 * Decides the faults of one request. The same number of draws is taken for every request, so
 * a seed gives the same sequence of outcomes whatever the rates are.
 */
export function planFaults(faults: EndpointFaults, random: SeededRandom, forcedRateLimit: boolean): FaultPlan {
  const timeoutDraw = random.next();
  const rateLimitDraw = random.next();
  const errorDraw = random.next();
  const malformedDraw = random.next();
  const delayMs = drawLatency(faults.latency, random);
  let outcome: FaultPlan['outcome'] = 'normal';
  if (timeoutDraw < faults.timeoutRate) outcome = 'timeout';
  else if (forcedRateLimit || rateLimitDraw < faults.rateLimitRate) outcome = 'rate-limited';
  else if (errorDraw < faults.errorRate) outcome = 'server-error';
  else if (malformedDraw < faults.malformedRate) outcome = 'malformed';
  return { delayMs, outcome, bytesPerSecond: faults.bytesPerSecond };
}
