/**
 * The real clipline processes (built dist) of one chaos test, pointed at the services the test
 * chose, and a small client of their HTTP API. A worker kind can run as several instances (each
 * gets its own metrics port), and one instance can be crashed on its own.
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEV_API_KEY } from '@clipline/shared';
import { freePort, startApp, stopApp, waitForHttp, type RunningApp } from '../../helpers/processes.js';
import { descendantsOf, killStragglers, type ProcessIdentity } from './process-tree.js';

export type ChaosApp = 'producer' | 'worker-io' | 'worker-cpu';

const METRICS_PORT_VARIABLE: Record<Exclude<ChaosApp, 'producer'>, string> = {
  'worker-io': 'WORKER_IO_METRICS_PORT',
  'worker-cpu': 'WORKER_CPU_METRICS_PORT',
};

export interface ApiAnswer {
  status: number;
  body: Record<string, any>;
  /** The `Retry-After` header, when there is one. */
  retryAfter: string | null;
  /** Milliseconds from sending the request to the end of the answer. */
  ms: number;
}

export class ClipLineProcesses {
  private readonly instances = new Map<string, RunningApp>();
  /** Processes started by instances that were crashed or killed: killed at the end if still there. */
  private readonly orphans: ProcessIdentity[] = [];
  /** Set once the test ends them all, when an instance's end is no failure. */
  private endingAll = false;

  private constructor(
    private readonly env: Record<string, string>,
    readonly producerUrl: string,
  ) {}

  /** `env`: the test environment's variables and the test's own (service URLs, pool sizes, …). */
  static async create(env: Record<string, string>): Promise<ClipLineProcesses> {
    const port = await freePort();
    return new ClipLineProcesses({ ...env, HOST: '127.0.0.1', PORT: String(port) }, `http://127.0.0.1:${port}`);
  }

  /** Starts an instance and waits until it answers its health check (the producer: /readyz). */
  async start(app: ChaosApp, instance: string = app, timeoutMs = 30_000): Promise<RunningApp> {
    if (this.instances.has(instance)) throw new Error(`instance "${instance}" was already started`);
    const metricsPort = app === 'producer' ? undefined : await freePort();
    const env = metricsPort === undefined ? this.env : { ...this.env, [METRICS_PORT_VARIABLE[app as Exclude<ChaosApp, 'producer'>]]: String(metricsPort) };
    const running = startApp(app, env);
    this.instances.set(instance, running);
    await waitForHttp(metricsPort === undefined ? `${this.producerUrl}/readyz` : `http://127.0.0.1:${metricsPort}/healthz`, running, timeoutMs);
    return running;
  }

  instance(name: string): RunningApp {
    const running = this.instances.get(name);
    if (!running) throw new Error(`no instance "${name}" was started`);
    return running;
  }

  /** Instances that are not running any more, with how they ended. */
  exited(): { instance: string; code: number | null; signal: NodeJS.Signals | null }[] {
    return [...this.instances]
      .filter(([, app]) => app.child.exitCode !== null || app.child.signalCode !== null)
      .map(([instance, app]) => ({ instance, code: app.child.exitCode, signal: app.child.signalCode }));
  }

  /**
   * Rejects as soon as one of the instances running now ends, naming it and how it ended, with
   * every instance's output kept: for drills in which no process may go, so that a process that
   * went is the failure reported instead of a wait that times out.
   */
  anyExit(label: string): Promise<never> {
    const running = [...this.instances].filter(([, app]) => app.child.exitCode === null && app.child.signalCode === null);
    const exit = Promise.race(
      running.map(([instance, app]) =>
        app.exited.then(({ code, signal }) => {
          if (this.endingAll) return new Promise<never>(() => {});
          throw new Error(`${instance} exited (code ${code}, signal ${signal})\n${this.keepLogs(label)}`);
        }),
      ),
    );
    // Once the drill stopped waiting on it, a later exit is judged by the drill's own checks.
    exit.catch(() => {});
    return exit;
  }

  /**
   * SIGKILLs one instance and nothing else, as a crash would. Returns the processes it had
   * started (ffmpeg children), which a crash leaves behind to end on their own.
   */
  async crash(instance: string): Promise<ProcessIdentity[]> {
    const app = this.instance(instance);
    const children = await descendantsOf(app.child.pid!);
    this.orphans.push(...children);
    await stopApp(app, 'SIGKILL');
    return children;
  }

  /** Starts a crashed or stopped instance again under its name, as a supervisor restarts a container. */
  async restart(app: ChaosApp, instance: string, timeoutMs = 30_000): Promise<RunningApp> {
    const previous = this.instance(instance);
    if (previous.child.exitCode === null && previous.child.signalCode === null) throw new Error(`instance "${instance}" is still running`);
    this.instances.delete(instance);
    return this.start(app, instance, timeoutMs);
  }

  /** Kills every instance and anything they started. Returns ids of orphans it had to kill. */
  async killAll(): Promise<number[]> {
    this.endingAll = true;
    for (const app of this.instances.values()) {
      if (app.child.exitCode !== null || app.child.signalCode !== null) continue;
      this.orphans.push(...(await descendantsOf(app.child.pid!)));
      await stopApp(app, 'SIGKILL');
    }
    return killStragglers(this.orphans);
  }

  /** The last lines every instance printed, for failure messages. */
  logs(lines = 40): string {
    return [...this.instances].map(([instance, app]) => `--- ${instance}\n${app.output().trimEnd().split('\n').slice(-lines).join('\n')}`).join('\n');
  }

  /**
   * Writes every instance's whole output to a file in the temporary folder (the test's own
   * folders go with its clean-up) and returns where, with the last lines of each.
   */
  keepLogs(label: string): string {
    const file = path.join(os.tmpdir(), `clipline-chaos-${label}-${Date.now()}.log`);
    writeFileSync(file, [...this.instances].map(([instance, app]) => `--- ${instance}\n${app.output()}`).join('\n'));
    return `whole output of every process in ${file}; the last lines:\n${this.logs()}`;
  }

  /** One API request with the dev key; a request that gets no answer within `timeoutMs` throws. */
  async api(method: string, route: string, body?: unknown, timeoutMs = 15_000): Promise<ApiAnswer> {
    const started = Date.now();
    const res = await fetch(`${this.producerUrl}${route}`, {
      method,
      headers: { authorization: `Bearer ${DEV_API_KEY}`, 'content-type': 'application/json' },
      signal: AbortSignal.timeout(timeoutMs),
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    let parsed: Record<string, any>;
    try {
      parsed = JSON.parse(text) as Record<string, any>;
    } catch {
      parsed = { text };
    }
    return { status: res.status, body: parsed, retryAfter: res.headers.get('retry-after'), ms: Date.now() - started };
  }

  /** Submits a video and returns its id; anything but 202 throws with the answer. */
  async submit(submission: { source: string } & Record<string, unknown>): Promise<string> {
    const answer = await this.api('POST', '/v1/videos', submission);
    if (answer.status !== 202) throw new Error(`POST /v1/videos answered ${answer.status}: ${JSON.stringify(answer.body)}`);
    return answer.body.id as string;
  }
}
