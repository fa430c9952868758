/**
 * Starts tracing for a process, before anything it instruments is imported. With no OTLP endpoint
 * set this returns at once: no SDK module is loaded and nothing is patched.
 *
 * Order matters: the loader hook (import-in-the-middle) is registered first, so that the modules
 * imported afterwards (express, ioredis, pg, mysql2, node:http) are handed to the
 * instrumentations as they load; only then may the app import them. Apps therefore call this
 * from a small entry module and import the rest of themselves dynamically.
 */
import { markTracingStarted } from './spans.js';
import { type TracingSettings, tracingSettings } from './settings.js';

export interface Telemetry {
  readonly enabled: boolean;
  readonly settings: TracingSettings | undefined;
  /** Exports what is buffered and stops; safe to call twice. */
  shutdown(): Promise<void>;
}

const OFF: Telemetry = { enabled: false, settings: undefined, shutdown: async () => {} };

export async function startTelemetry(defaultServiceName: string, env: NodeJS.ProcessEnv = process.env): Promise<Telemetry> {
  let settings: TracingSettings | undefined;
  try {
    settings = tracingSettings(env, defaultServiceName);
  } catch (error) {
    process.stderr.write(`clipline: ${(error as Error).message}\n`);
    process.exit(1);
  }
  if (!settings) return OFF;
  await registerLoaderHook();
  const provider = await startTracerProvider(settings);
  markTracingStarted();
  let stopping: Promise<void> | undefined;
  return { enabled: true, settings, shutdown: () => (stopping ??= provider.shutdown()) };
}

let hookMessages: { waitForAllMessagesAcknowledged(): Promise<void> } | undefined;

async function registerLoaderHook(): Promise<void> {
  const { register } = await import('node:module');
  const { createAddHookMessageChannel } = await import('import-in-the-middle');
  const { registerOptions, waitForAllMessagesAcknowledged } = createAddHookMessageChannel();
  // Only the modules an instrumentation asked for are wrapped (the channel tells the loader which).
  register('import-in-the-middle/hook.mjs', import.meta.url, registerOptions);
  hookMessages = { waitForAllMessagesAcknowledged };
}

/** Operations BullMQ workers run on their own, outside any job (span names start with them). */
const HOUSEKEEPING = new Set(['getNextJob', 'extendLocks', 'startStalledCheckTimer', 'moveStalledJobsToWait']);

async function startTracerProvider(settings: TracingSettings): Promise<{ shutdown(): Promise<void> }> {
  const [{ NodeTracerProvider }, { BatchSpanProcessor, ParentBasedSampler, SamplingDecision }, { resourceFromAttributes }, { registerInstrumentations }] =
    await Promise.all([
      import('@opentelemetry/sdk-trace-node'),
      import('@opentelemetry/sdk-trace-base'),
      import('@opentelemetry/resources'),
      import('@opentelemetry/instrumentation'),
    ]);
  const exporter = await createExporter(settings);
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': settings.serviceName }),
    spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: 1000 })],
    // BullMQ traces its workers' own housekeeping (polling for jobs, lock renewals, stall checks)
    // as traces of their own, several a second on an idle fleet: those roots, and what runs
    // under them, are dropped. Jobs carry their enqueuer's context and are kept.
    sampler: new ParentBasedSampler({
      root: {
        shouldSample: (_context, _traceId, name) => ({
          decision: HOUSEKEEPING.has(name.split(' ')[0] ?? '') ? SamplingDecision.NOT_RECORD : SamplingDecision.RECORD_AND_SAMPLED,
        }),
        toString: () => 'clipline: all but worker housekeeping',
      },
    }),
  });
  // Sets the global tracer provider, the AsyncLocalStorage context manager and W3C propagation.
  provider.register();
  registerInstrumentations({ tracerProvider: provider, instrumentations: await createInstrumentations() });
  await hookMessages?.waitForAllMessagesAcknowledged();
  return provider;
}

async function createExporter(settings: TracingSettings) {
  const options = { url: settings.tracesUrl, headers: settings.headers };
  if (settings.protocol === 'http/json') {
    const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-http');
    return new OTLPTraceExporter(options);
  }
  const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-proto');
  return new OTLPTraceExporter(options);
}

async function createInstrumentations() {
  const [http, express, ioredis, pg, mysql2] = await Promise.all([
    import('@opentelemetry/instrumentation-http'),
    import('@opentelemetry/instrumentation-express'),
    import('@opentelemetry/instrumentation-ioredis'),
    import('@opentelemetry/instrumentation-pg'),
    import('@opentelemetry/instrumentation-mysql2'),
  ]);
  return [
    // The exporter's own posts to the collector run with tracing suppressed, so they make no spans.
    new http.HttpInstrumentation({
      ignoreIncomingRequestHook: (request) => request.url === '/metrics' || request.url === '/healthz' || request.url === '/readyz',
    }),
    new express.ExpressInstrumentation(),
    // Only commands inside a traced operation: BullMQ's blocking polls would be a span a second.
    // The command's name alone: its arguments are job payloads (a signed source URL, a sealed
    // password) and keys, which have no place in a trace.
    new ioredis.IORedisInstrumentation({ requireParentSpan: true, dbStatementSerializer: (command) => command }),
    new pg.PgInstrumentation({ requireParentSpan: true }),
    new mysql2.MySQL2Instrumentation(),
  ];
}
