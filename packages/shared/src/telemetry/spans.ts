/**
 * Spans of clipline's own work (ffmpeg runs, provider calls) and the ids of the active span for
 * log lines. Only the OpenTelemetry API is loaded here: without a started SDK every call is a
 * no-op on the API's own no-op tracer.
 */
import { type Attributes, context, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { BullMQOtel } from 'bullmq-otel';

const TRACER_NAME = 'clipline';

let tracingStarted = false;

/** Marks tracing as started (by `startTelemetry`): BullMQ queues and workers then carry the context. */
export function markTracingStarted(): void {
  tracingStarted = true;
}

export function isTracingStarted(): boolean {
  return tracingStarted;
}

let bullmqTelemetry: BullMQOtel | undefined;

/**
 * The `telemetry` option of every BullMQ Queue, FlowProducer and Worker: undefined when tracing is
 * off, so BullMQ takes its path without spans or context metadata.
 */
export function queueTelemetry(): BullMQOtel | undefined {
  if (!tracingStarted) return undefined;
  bullmqTelemetry ??= new BullMQOtel({ tracerName: TRACER_NAME });
  return bullmqTelemetry;
}

/** Trace and span id of the active span, for a log line; empty when there is none. */
export function activeTraceFields(): { traceId?: string; spanId?: string } {
  if (!tracingStarted) return {};
  const span = trace.getSpan(context.active());
  if (!span) return {};
  const { traceId, spanId } = span.spanContext();
  return { traceId, spanId };
}

export interface SpanOptions {
  attributes?: Attributes;
  /** @defaultValue SpanKind.INTERNAL */
  kind?: SpanKind;
}

/**
 * Runs `work` inside a child span of the active one. The span records a thrown error and ends
 * when the promise settles; `work` may add attributes on the way (e.g. an exit code).
 */
export async function withSpan<T>(name: string, options: SpanOptions, work: (span: Span) => Promise<T>): Promise<T> {
  const tracer = trace.getTracer(TRACER_NAME);
  return tracer.startActiveSpan(name, { kind: options.kind ?? SpanKind.INTERNAL, attributes: options.attributes ?? {} }, async (span) => {
    try {
      return await work(span);
    } catch (error) {
      span.recordException(error as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error)?.message });
      throw error;
    } finally {
      span.end();
    }
  });
}

/**
 * Starts a child span of the active one without making it active, for work that is not one
 * awaited call (a child process); the caller ends it.
 */
export function startChildSpan(name: string, options: SpanOptions = {}): Span {
  return trace.getTracer(TRACER_NAME).startSpan(name, { kind: options.kind ?? SpanKind.INTERNAL, attributes: options.attributes ?? {} });
}

/** Ends a span, marked failed with `failure` when there is one. */
export function endSpan(span: Span, failure?: string): void {
  if (failure) span.setStatus({ code: SpanStatusCode.ERROR, message: failure });
  span.end();
}

export { SpanKind };
