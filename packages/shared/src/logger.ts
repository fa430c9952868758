import { pino, type Logger, type LoggerOptions } from 'pino';
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
}

/** What every line gets from where it is logged: the active trace and span, the request it serves. */
function logContextFields(): Record<string, string> {
  const requestId = currentRequestId();
  return requestId ? { ...activeTraceFields(), requestId } : activeTraceFields();
}

export function createLogger(settings: LoggerSettings): Logger {
  const options: LoggerOptions = {
    name: settings.name,
    level: settings.level ?? 'info',
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    base: { service: settings.name, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    mixin: logContextFields,
  };
  return settings.destination ? pino(options, settings.destination as pino.DestinationStream) : pino(options);
}
