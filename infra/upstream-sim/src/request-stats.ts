import { SIM_ENDPOINTS, type SimEndpoint } from './fault-config.js';
import type { FaultPlan } from './fault-plan.js';

export interface EndpointStats {
  requests: number;
  /** Answers by HTTP status; requests that never got one are counted in `faults.timeout`. */
  statuses: Record<string, number>;
  faults: { rateLimited: number; serverError: number; timeout: number; malformed: number; delayed: number; slowBody: number };
  inFlight: number;
  /** Epoch milliseconds of the last arrival, or null. */
  lastRequestAt: number | null;
}

/** One request as the simulator saw it. */
export interface RequestRecord {
  endpoint: SimEndpoint;
  method: string;
  path: string;
  /** Epoch milliseconds when the request arrived. */
  at: number;
  /** Epoch milliseconds when the answer was complete, or null while pending or when it never came. */
  finishedAt: number | null;
  status: number | null;
  outcome: FaultPlan['outcome'];
}

export interface SimulatorStats {
  startedAt: number;
  endpoints: Record<SimEndpoint, EndpointStats>;
  /** Requests to unknown paths. */
  unknown: number;
  /** The most recent requests to provider endpoints, oldest first (bounded). */
  requests: RequestRecord[];
}

function emptyEndpoint(): EndpointStats {
  return {
    requests: 0,
    statuses: {},
    faults: { rateLimited: 0, serverError: 0, timeout: 0, malformed: 0, delayed: 0, slowBody: 0 },
    inFlight: 0,
    lastRequestAt: null,
  };
}

/** Counts per endpoint plus a bounded log of recent requests with their timings. */
export class RequestStats {
  private startedAt = Date.now();
  private endpoints = this.emptyEndpoints();
  private unknown = 0;
  private log: RequestRecord[] = [];

  constructor(private readonly logLimit: number) {}

  private emptyEndpoints(): Record<SimEndpoint, EndpointStats> {
    return Object.fromEntries(SIM_ENDPOINTS.map((endpoint) => [endpoint, emptyEndpoint()])) as Record<SimEndpoint, EndpointStats>;
  }

  arrived(endpoint: SimEndpoint, method: string, path: string): RequestRecord {
    const record: RequestRecord = { endpoint, method, path, at: Date.now(), finishedAt: null, status: null, outcome: 'normal' };
    const stats = this.endpoints[endpoint];
    stats.requests += 1;
    stats.inFlight += 1;
    stats.lastRequestAt = record.at;
    this.log.push(record);
    // Trim in batches so the log stays bounded without shifting the array on every request.
    if (this.log.length > this.logLimit * 1.25) this.log = this.log.slice(-this.logLimit);
    return record;
  }

  planned(record: RequestRecord, plan: FaultPlan): void {
    const faults = this.endpoints[record.endpoint].faults;
    record.outcome = plan.outcome;
    if (plan.delayMs > 0) faults.delayed += 1;
    if (plan.bytesPerSecond !== null) faults.slowBody += 1;
    if (plan.outcome === 'rate-limited') faults.rateLimited += 1;
    if (plan.outcome === 'server-error') faults.serverError += 1;
    if (plan.outcome === 'timeout') faults.timeout += 1;
    if (plan.outcome === 'malformed') faults.malformed += 1;
  }

  /** The answer is complete (status set) or the client went away (status null). */
  finished(record: RequestRecord, status: number | null): void {
    if (record.finishedAt !== null) return;
    record.finishedAt = Date.now();
    record.status = status;
    const stats = this.endpoints[record.endpoint];
    stats.inFlight -= 1;
    if (status !== null) stats.statuses[String(status)] = (stats.statuses[String(status)] ?? 0) + 1;
  }

  unknownPath(): void {
    this.unknown += 1;
  }

  snapshot(): SimulatorStats {
    return structuredClone({ startedAt: this.startedAt, endpoints: this.endpoints, unknown: this.unknown, requests: this.log.slice(-this.logLimit) });
  }

  reset(): void {
    this.startedAt = Date.now();
    this.endpoints = this.emptyEndpoints();
    this.unknown = 0;
    this.log = [];
  }
}
