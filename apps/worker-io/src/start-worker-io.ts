import { createService, loadConfigOrExit, requireMigratedDatabase } from '@clipline/shared';
import type { Telemetry } from '@clipline/shared/telemetry';
import { startIoWorker } from './io-worker.js';

/** Starts the worker-io process; `main.ts` calls this once tracing is up. */
export async function startWorkerIo(telemetry: Telemetry): Promise<void> {
  const service = createService('worker-io', loadConfigOrExit());
  service.shutdown.installSignalHandlers();
  // First registered, so it runs last: spans of jobs released during the shutdown are exported too.
  service.shutdown.register('telemetry', () => telemetry.shutdown());
  await requireMigratedDatabase(service);
  try {
    await startIoWorker(service, { providers: service.config.providers });
  } catch (error) {
    service.logger.fatal({ err: error }, 'worker-io could not start');
    await service.shutdown.shutdown('startup failure');
    process.exit(1);
  }
}
