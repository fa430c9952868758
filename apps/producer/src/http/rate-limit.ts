import type { RequestHandler, Response } from 'express';
import { GroupedCalls, type RedisClient } from '@clipline/shared';
import { type Caller, principalOf } from './auth.js';
import { HttpProblem } from './problem.js';

type SetHeader = (name: string, value: string) => void;

/** The charges the known-key gate made, by response, so the rate-limit middleware does not charge again. */
const precharges = new WeakMap<Response, Charge>();

interface Charge {
  count: number;
  now: number;
  window: number;
}

/** Adds ARGV[1] to the window's count, (re)sets its expiry to ARGV[2] seconds, returns the count. */
const CHARGE_SCRIPT = `local count = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return count`;

/**
 * Requests per principal per minute, counted in Redis so every producer replica shares the
 * count. A request costs one unit; a batch costs one more per video beyond the first (see
 * {@link RequestBudget.charge}). When Redis cannot answer, the limit is not enforced (the queue
 * itself then answers 503).
 */
export class RequestBudget {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    readonly perMinute: number,
  ) {}

  /** The principal's counter of the minute `window`. */
  key(principal: string, window: number): string {
    return `${this.prefix}:api-rate:${principal}:${window}`;
  }

  /** Adds `units` to the principal's count this minute; throws 429 once it is past the limit. */
  async charge(principal: string, units: number, headers?: SetHeader): Promise<void> {
    if (this.perMinute <= 0 || units <= 0) return;
    const now = Date.now();
    const window = Math.floor(now / 60_000);
    let count: number;
    try {
      // One script, one command: INCRBY and EXPIRE as MULTI would send them, without a MULTI's
      // four commands and its client-side transaction object on every request.
      count = Number(await this.redis.eval(CHARGE_SCRIPT, 1, this.key(principal, window), units, 61));
    } catch {
      return;
    }
    this.settle({ count, now, window }, headers);
  }

  /** Sets the rate-limit headers for a charge; throws 429 when it went past the limit. */
  settle({ count, now, window }: Charge, headers?: SetHeader): void {
    headers?.('ratelimit-limit', String(this.perMinute));
    headers?.('ratelimit-remaining', String(Math.max(0, this.perMinute - count)));
    if (count > this.perMinute) {
      const retryAfter = Math.max(1, Math.ceil(((window + 1) * 60_000 - now) / 1000));
      throw new HttpProblem(
        429,
        'Too Many Requests',
        `this API key is limited to ${this.perMinute} requests per minute (a batch counts each video); retry in ${retryAfter} s`,
        {},
        { 'retry-after': String(retryAfter) },
      );
    }
  }
}

/**
 * Reads the failed-authentication count of KEYS[1] against ARGV[3]: at or past it, returns
 * {failures, -1} and charges nothing; else charges ARGV[1] units to KEYS[2] (expiring in ARGV[2]
 * seconds; no charge when ARGV[1] is 0) and returns {failures, count}.
 */
const ADMIT_SCRIPT = `local failures = tonumber(redis.call('GET', KEYS[1]) or '0')
if failures >= tonumber(ARGV[3]) then return {failures, -1} end
if tonumber(ARGV[1]) <= 0 then return {failures, 0} end
local count = redis.call('INCRBY', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return {failures, count}`;

/** A request waiting for its admission, and the response its charge is remembered for. */
interface Admission {
  res: Response;
  resolve(wait: number): void;
}

/** What the requests of one address and principal that go to Redis together share. */
interface AdmissionGroup {
  address: string;
  principal: string;
}

/**
 * The throttle check of a known key (one of the configuration, or a stored key the database
 * accepted before), and the request's charge, in one Redis command. Such a key is known at once,
 * so it needs neither the in-flight reservation of {@link AuthFailureThrottle} (which, counting
 * every valid request while it waits for Redis, answered 429 to bursts of more than
 * AUTH_FAILURES_PER_MINUTE concurrent requests from one address) nor a release. It still gets 429
 * while its address is throttled, so a guess that happens to be right is answered like every
 * other guess, and a throttled request is not charged.
 *
 * Requests of the same address and principal that arrive in one turn of the event loop, or while
 * their previous command is in flight, share one command charging all of them ({@link GroupedCalls}):
 * the count it returns is the last of theirs, so each request gets the count it would have got in
 * its turn (the first `count - n + 1`, the last `count`) and the limit cuts at the same request as
 * with a command each.
 *
 * Reads the throttle's keys (`<prefix>:<address>:<minute>`, see packages/shared/src/auth-throttle.ts);
 * both keys start with the queue prefix, whose hash tag keeps them in one cluster slot. When the
 * script cannot run, the count is read alone and the rate-limit middleware charges as usual.
 */
export class KnownKeyGate {
  private readonly groups = new GroupedCalls<Admission, AdmissionGroup>((group, admissions) => this.admit(group, admissions));

  constructor(
    private readonly redis: RedisClient,
    private readonly throttlePrefix: string,
    private readonly failuresPerMinute: number,
    private readonly budget: RequestBudget,
  ) {}

  /** Seconds the address must still wait (0: admitted, and the request charged). */
  retryAfter(address: string, caller: Caller, res: Response): Promise<number> {
    return new Promise<number>((resolve) => {
      this.groups.add(`${address}\u0000${caller.principal}`, () => ({ address, principal: caller.principal }), { res, resolve });
    });
  }

  /** One command for the group: its throttle check and the charge of all its requests. */
  private async admit({ address, principal }: AdmissionGroup, admissions: Admission[]): Promise<void> {
    const now = Date.now();
    const window = Math.floor(now / 60_000);
    const throttleKey = `${this.throttlePrefix}:${address}:${window}`;
    const wait = Math.max(1, Math.ceil(((window + 1) * 60_000 - now) / 1000));
    const units = this.budget.perMinute > 0 ? 1 : 0;
    const all = (seconds: number) => {
      for (const admission of admissions) admission.resolve(seconds);
    };
    let failures: number;
    let count: number;
    try {
      const answer = (await this.redis.eval(
        ADMIT_SCRIPT,
        2,
        throttleKey,
        this.budget.key(principal, window),
        units * admissions.length,
        61,
        this.failuresPerMinute,
      )) as [number, number];
      failures = Number(answer[0]);
      count = Number(answer[1]);
    } catch {
      try {
        all(Number((await this.redis.get(throttleKey)) ?? 0) >= this.failuresPerMinute ? wait : 0);
      } catch {
        all(0);
      }
      return;
    }
    if (count < 0 || failures >= this.failuresPerMinute) return all(wait);
    admissions.forEach((admission, index) => {
      if (units > 0) precharges.set(admission.res, { count: count - (admissions.length - 1 - index), now, window });
      admission.resolve(0);
    });
  }
}

export function rateLimitPerKey(budget: RequestBudget): RequestHandler {
  return async (_req, res, next) => {
    try {
      const headers: SetHeader = (name, value) => res.setHeader(name, value);
      const precharged = precharges.get(res);
      if (precharged) budget.settle(precharged, headers);
      else await budget.charge(principalOf(res), 1, headers);
      next();
    } catch (error) {
      next(error);
    }
  };
}
