/**
 * The worker-io entry. Tracing starts before the rest of the app is imported (hence the dynamic
 * import), so ioredis, the database drivers and node:http are instrumented as they load. With no
 * OTLP endpoint set, startTelemetry returns at once and loads nothing.
 */
import { startTelemetry } from '@clipline/shared/telemetry';

const telemetry = await startTelemetry('clipline-worker-io');
const { startWorkerIo } = await import('./start-worker-io.js');
await startWorkerIo(telemetry);
