import { isMainThread } from 'node:worker_threads';
import { pino, type Logger, type LoggerOptions } from 'pino';
import { BatchedLineWriter } from './log-writer.js';
import { currentRequestId } from './telemetry/request-context.js';
import { activeTraceFields } from './telemetry/spans.js';

export type { Logger } from 'pino';

/** Paths whose values never reach a log line, whatever object they sit in. */
export const REDACTED_PATHS = [
  'authorization',
  'password',
  'apiKey',
  'apiKeys',
  'secret',
  'token',
  '*.authorization',
  '*.password',
  '*.apiKey',
  '*.secret',
  '*.token',
  'headers.authorization',
  'headers.cookie',
  'req.headers.authorization',
  'req.headers.cookie',
  '*.headers.authorization',
  'data.password',
  'job.data.password',
  'config.apiKeys',
  'config.dashboardPassword',
  'config.databaseUrl',
];

export interface LoggerSettings {
  name: string;
  level?: string;
  /** Where lines go; stdout when omitted. Tests pass a stream to read what was logged. */
  destination?: NodeJS.WritableStream;
  /**
   * `LOG_FLUSH_MS`: stdout lines are written in batches, at most this many ms after they were
   * logged (and at exit); 0 writes each line as it is logged. Ignored with a `destination`.
   */
  flushMs?: number;
}

/** What every line gets from where it is logged: the active trace and span, the request it serves. */
function logContextFields(): Record<string, string> {
  const requestId = currentRequestId();
  return requestId ? { ...activeTraceFields(), requestId } : activeTraceFields();
}

/**
 * pino's `"time":"<ISO 8601>"` field, with the date and time up to the second formatted once a
 * second instead of once a line (a tenth of a line's cost on a busy worker).
 */
function isoTimeField(): () => string {
  let second = Number.NaN;
  let head = '';
  return () => {
    const now = Date.now();
    const ms = now % 1000;
    if (now - ms !== second) {
      second = now - ms;
      head = `,"time":"${new Date(second).toISOString().slice(0, 20)}`;
    }
    return `${head}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z"`;
  };
}

/** The process's batched stdout: one, whatever number of loggers write to it. */
let batchedStdout: BatchedLineWriter | undefined;

/** Where a logger writes: the given stream, batched stdout, or (flushMs 0, worker threads) pino's synchronous stdout. */
function destinationOf(settings: LoggerSettings): pino.DestinationStream | undefined {
  if (settings.destination) return settings.destination as pino.DestinationStream;
  const flushMs = settings.flushMs ?? 0;
  if (flushMs <= 0 || !isMainThread) return undefined;
  batchedStdout ??= new BatchedLineWriter(flushMs);
  return batchedStdout;
}

export function createLogger(settings: LoggerSettings): Logger {
  const options: LoggerOptions = {
    name: settings.name,
    level: settings.level ?? 'info',
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    base: { service: settings.name, pid: process.pid },
    timestamp: isoTimeField(),
    mixin: logContextFields,
  };
  const destination = destinationOf(settings);
  return destination ? pino(options, destination) : pino(options);
}
