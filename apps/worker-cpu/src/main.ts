import { createService, loadConfigOrExit } from '@clipline/shared';
import { startCpuWorker } from './cpu-worker.js';

const service = createService('worker-cpu', loadConfigOrExit());
service.shutdown.installSignalHandlers();
try {
  await startCpuWorker(service);
} catch (error) {
  service.logger.fatal({ err: error }, 'worker-cpu could not start');
  await service.shutdown.shutdown('startup failure');
  process.exit(1);
}
