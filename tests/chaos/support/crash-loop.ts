/**
 * A worker that dies every few seconds: picks one running instance at random, SIGKILLs it, and
 * starts it again at once under the same name, as a container supervisor would. The next crash
 * does not wait for the restart, but the last running instance of an app is never chosen, so
 * each kind of work always has a process. The random choices come from a seed, so a failing run
 * can be replayed with the same order of victims.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ChaosApp, ClipLineProcesses } from './clipline-processes.js';

export interface CrashTarget {
  instance: string;
  app: ChaosApp;
}

export interface CrashLoopOptions {
  processes: ClipLineProcesses;
  targets: readonly CrashTarget[];
  /** Milliseconds from one restart to the next crash, drawn uniformly between the two. */
  intervalMs: { min: number; max: number };
  seed: number;
  /** Milliseconds a restarted instance may take to answer its health check. @defaultValue 90000 */
  restartTimeoutMs?: number;
}

export interface CrashRecord {
  instance: string;
  /** Milliseconds after the loop started. */
  at: number;
  /** Processes the instance had started (ffmpeg) when it was killed. */
  orphans: number;
  /** Milliseconds from the kill until the new instance answered its health check. */
  restartMs: number;
}

/** mulberry32: a small seeded generator, good enough to pick victims and intervals. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export class CrashLoop {
  readonly crashes: CrashRecord[] = [];
  private readonly random: () => number;
  private running = false;
  private paused = false;
  private loop: Promise<void> = Promise.resolve();
  /** Instances being started again, by name: `pause` and `stop` wait for them. */
  private readonly restarting = new Map<string, Promise<void>>();
  private failure: unknown;
  private startedAt = 0;

  constructor(private readonly options: CrashLoopOptions) {
    this.random = seededRandom(options.seed);
  }

  start(): void {
    if (this.running) throw new Error('the crash loop is already running');
    this.running = true;
    this.startedAt = Date.now();
    this.loop = this.run();
    // Handled here so a failed crash is not an unhandled rejection before `stop` rethrows it.
    this.loop.catch(() => {});
  }

  /** No crash after this until `resume`; resolves once every crashed instance runs again. */
  async pause(): Promise<void> {
    this.paused = true;
    await this.restarted();
  }

  resume(): void {
    this.paused = false;
  }

  /** Ends the loop; resolves once every crashed instance runs again. Rethrows a failed restart. */
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    await this.restarted();
  }

  private async restarted(): Promise<void> {
    while (this.restarting.size > 0) await Promise.all(this.restarting.values());
    if (this.failure) throw this.failure;
  }

  /** Instances that run and are not the last running one of their app. */
  private victims(): CrashTarget[] {
    const up = this.options.targets.filter((target) => !this.restarting.has(target.instance));
    return up.filter((target) => up.some((other) => other.app === target.app && other.instance !== target.instance));
  }

  private async run(): Promise<void> {
    const { min, max } = this.options.intervalMs;
    while (this.running && !this.failure) {
      const due = Date.now() + min + this.random() * (max - min);
      while (this.running && (this.paused || Date.now() < due)) await sleep(100);
      const victims = this.victims();
      if (!this.running || victims.length === 0) continue;
      await this.crash(victims[Math.floor(this.random() * victims.length)]!);
    }
  }

  /** SIGKILLs the instance and starts it again in the background, so the next crash need not wait for the restart. */
  private async crash(target: CrashTarget): Promise<void> {
    const killedAt = Date.now();
    const orphans = await this.options.processes.crash(target.instance);
    const restart = this.options.processes
      .restart(target.app, target.instance, this.options.restartTimeoutMs ?? 90_000)
      .then(() => {
        this.crashes.push({ instance: target.instance, at: killedAt - this.startedAt, orphans: orphans.length, restartMs: Date.now() - killedAt });
      })
      .catch((error: unknown) => {
        this.failure ??= error;
      })
      .finally(() => this.restarting.delete(target.instance));
    this.restarting.set(target.instance, restart);
  }
}
