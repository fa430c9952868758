import { createService, loadConfigOrExit, requireMigratedDatabase } from '@clipline/shared';
import { startIoWorker } from './io-worker.js';

const service = createService('worker-io', loadConfigOrExit());
service.shutdown.installSignalHandlers();
await requireMigratedDatabase(service);
try {
  await startIoWorker(service, { providers: service.config.providers });
} catch (error) {
  service.logger.fatal({ err: error }, 'worker-io could not start');
  await service.shutdown.shutdown('startup failure');
  process.exit(1);
}
