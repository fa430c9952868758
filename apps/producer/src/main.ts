/**
 * The producer entry. Tracing starts before the rest of the app is imported (hence the dynamic
 * import), so express, node:http, ioredis and the database drivers are instrumented as they
 * load. With no OTLP endpoint set, startTelemetry returns at once and loads nothing.
 */
import { startTelemetry } from '@clipline/shared/telemetry';

const telemetry = await startTelemetry('clipline-producer');
const { startProducer } = await import('./start-producer.js');
await startProducer(telemetry);
