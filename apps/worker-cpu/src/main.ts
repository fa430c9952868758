import { createService, loadConfigOrExit } from '@clipline/shared';
import { loadCpuWorkerSettings } from './cpu-worker-config.js';
import { startCpuWorker } from './cpu-worker.js';

const service = createService('worker-cpu', loadConfigOrExit());
const settings = loadConfigOrExit(process.env, loadCpuWorkerSettings);
service.shutdown.installSignalHandlers();
try {
  await startCpuWorker(service, { settings });
} catch (error) {
  service.logger.fatal({ err: error }, 'worker-cpu could not start');
  await service.shutdown.shutdown('startup failure');
  process.exit(1);
}
