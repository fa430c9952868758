/**
 * `@clipline/shared/telemetry`: what an app's entry module needs before it imports anything that
 * is traced. Nothing here loads Redis, database or HTTP framework modules.
 */
export { startTelemetry, type Telemetry } from './start.js';
export { type OtlpProtocol, type TracingSettings, tracingSettings } from './settings.js';
