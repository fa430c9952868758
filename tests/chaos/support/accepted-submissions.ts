/**
 * Submissions that must get through while the system is being broken, as a careful client makes
 * them: each request carries an Idempotency-Key and is repeated until the API accepts it (202).
 * A repeat is safe: a request the API already took answers its stored 202 again, one still
 * running answers 409, and a refusal (503 while Redis is away) stored nothing.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DEV_API_KEY } from '@clipline/shared';

export interface AcceptedSubmission {
  id: string;
  /** Date.now() when the request that was accepted was sent: the work cannot have started before. */
  sentAt: number;
  /** The answers before the 202, as `<status> <detail>` (status 0: no answer at all). */
  refusals: string[];
}

/** Milliseconds a request may go unanswered before it is given up and sent again. */
const REQUEST_TIMEOUT_MS = 30_000;
/** No answer (0), the same key still in flight (409), a limit (429), a dependency away (5xx but 500). */
const RETRYABLE = new Set([0, 409, 429, 502, 503, 504]);

async function post(url: string, body: unknown, idempotencyKey: string): Promise<{ status: number; answer: Record<string, unknown> }> {
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${DEV_API_KEY}`, 'content-type': 'application/json', 'idempotency-key': idempotencyKey },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const text = await res.text();
    try {
      return { status: res.status, answer: JSON.parse(text) as Record<string, unknown> };
    } catch {
      return { status: res.status, answer: { text } };
    }
  } catch (error) {
    // fetch hides the reason (refused, reset, closed keep-alive socket) in its cause.
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    return { status: 0, answer: { error: `${String(error)}${cause ? ` (${cause.code ?? cause.message})` : ''}` } };
  }
}

/** POSTs `body` to `producerUrl + route` until it is accepted; throws on any other answer or after `timeoutMs`. */
export async function postUntilAccepted(
  producerUrl: string,
  route: string,
  body: unknown,
  idempotencyKey: string,
  timeoutMs = 150_000,
): Promise<AcceptedSubmission> {
  const refusals: string[] = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const sentAt = Date.now();
    const { status, answer } = await post(`${producerUrl}${route}`, body, idempotencyKey);
    if (status === 202) return { id: answer.id as string, sentAt, refusals };
    if (!RETRYABLE.has(status) || Date.now() > deadline) {
      throw new Error(`POST ${route} answered ${status}: ${JSON.stringify(answer).slice(0, 500)} (earlier answers: ${refusals.join('; ') || 'none'})`);
    }
    refusals.push(`${status} ${String(answer.detail ?? answer.error ?? '').slice(0, 80)}`);
    await sleep(500);
  }
}

/**
 * Starts `task(index)` for every index below `count`, the n-th one no earlier than n / perSecond
 * seconds after the first and only while fewer than `inFlight` run, as a client with a bounded
 * pool of connections does: when the API slows down, the client slows down with it instead of
 * piling up requests that time out and come back as retries. Resolves with every result, in order.
 */
export async function paced<T>(count: number, perSecond: number, task: (index: number) => Promise<T>, inFlight = 8): Promise<T[]> {
  const started = Date.now();
  const results: Promise<T>[] = [];
  const running = new Set<Promise<unknown>>();
  for (let index = 0; index < count; index++) {
    const wait = started + (index * 1000) / perSecond - Date.now();
    if (wait > 0) await sleep(wait);
    while (running.size >= inFlight) await Promise.race(running);
    const result = task(index);
    // Rejections are collected by Promise.all below; this keeps an early one from going unhandled meanwhile.
    const settled: Promise<unknown> = result.then(
      (): boolean => running.delete(settled),
      (): boolean => running.delete(settled),
    );
    running.add(settled);
    results.push(result);
  }
  return Promise.all(results);
}
