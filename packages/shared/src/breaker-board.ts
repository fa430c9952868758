import os from 'node:os';
import type { RedisClient } from './redis.js';

export interface BreakerReport {
  provider: string;
  state: string;
  process: string;
  reportedAt: string;
}

/** Reports older than this are from processes that stopped: they are left out. */
const STALE_MS = 30_000;

/**
 * Breaker states of every worker process, kept in one Redis hash so the dashboard (another
 * process) can show them: each process writes its own fields every few seconds.
 */
export class BreakerBoard {
  private readonly key: string;
  readonly process = `${os.hostname()}:${process.pid}`;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
  ) {
    this.key = `${prefix}:breakers`;
  }

  async report(states: Record<string, string>): Promise<void> {
    const at = new Date().toISOString();
    const fields = Object.entries(states).flatMap(([provider, state]) => [`${provider}|${this.process}`, JSON.stringify({ state, at })]);
    if (fields.length) await this.redis.hset(this.key, ...fields);
  }

  async withdraw(providers: readonly string[]): Promise<void> {
    if (providers.length) await this.redis.hdel(this.key, ...providers.map((provider) => `${provider}|${this.process}`));
  }

  async read(now = Date.now()): Promise<BreakerReport[]> {
    const entries = await this.redis.hgetall(this.key);
    const reports: BreakerReport[] = [];
    const stale: string[] = [];
    for (const [field, value] of Object.entries(entries)) {
      const [provider = '', processName = ''] = field.split('|');
      try {
        const { state, at } = JSON.parse(value) as { state: string; at: string };
        if (now - Date.parse(at) > STALE_MS) stale.push(field);
        else reports.push({ provider, state, process: processName, reportedAt: at });
      } catch {
        stale.push(field);
      }
    }
    if (stale.length) await this.redis.hdel(this.key, ...stale);
    return reports.sort((a, b) => a.provider.localeCompare(b.provider) || a.process.localeCompare(b.process));
  }
}
