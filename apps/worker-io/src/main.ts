import { createService, loadConfigOrExit } from '@clipline/shared';
import { startIoWorker } from './io-worker.js';

const service = createService('worker-io', loadConfigOrExit());
service.shutdown.installSignalHandlers();
try {
  await startIoWorker(service);
} catch (error) {
  service.logger.fatal({ err: error }, 'worker-io could not start');
  await service.shutdown.shutdown('startup failure');
  process.exit(1);
}
