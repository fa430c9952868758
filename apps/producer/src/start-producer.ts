import { closeServer, createService, loadConfigOrExit, requireMigratedDatabase, startMetricsServer } from '@clipline/shared';
import type { Telemetry } from '@clipline/shared/telemetry';
import { buildProducer } from './producer.js';
import { createProducerServer } from './server.js';

/** Starts the API and its metrics listener; `main.ts` calls this once tracing is up. */
export async function startProducer(telemetry: Telemetry): Promise<void> {
  const service = createService('producer', loadConfigOrExit());
  const { config, logger, shutdown } = service;
  shutdown.installSignalHandlers();
  // First registered, so it runs last: the spans of the shutdown itself are exported too.
  shutdown.register('telemetry', () => telemetry.shutdown());
  // Before the listener: an unmigrated database would answer 500 to every request behind a green /readyz.
  await requireMigratedDatabase(service);

  const { app } = buildProducer(service);
  const server = createProducerServer(app);
  server.on('error', (error) => {
    logger.fatal({ err: error }, `producer could not listen on ${config.host}:${config.port}`);
    process.exit(1);
  });
  server.listen(config.port, config.host, () => {
    logger.info({ port: config.port }, `producer listening on http://${config.host}:${config.port}`);
  });
  // Prometheus scrapes a port of its own, never the public API listener.
  const metricsServer = await startMetricsServer(service.metrics, config.producerMetricsPort, config.host).catch((error: unknown) => {
    logger.fatal({ err: error }, `producer could not serve metrics on ${config.host}:${config.producerMetricsPort}`);
    process.exit(1);
  });
  shutdown.register('metrics server', () => closeServer(metricsServer));
  // Registered last so it closes first: stop taking requests before the connections they use go.
  shutdown.register('http server', () => closeServer(server));
}
