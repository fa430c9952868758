import { createService, loadConfigOrExit, requireMigratedDatabase } from '@clipline/shared';
import { startCpuWorker } from './cpu-worker.js';

const service = createService('worker-cpu', loadConfigOrExit());
service.shutdown.installSignalHandlers();
await requireMigratedDatabase(service);
try {
  await startCpuWorker(service, { settings: service.config.cpuWorker });
} catch (error) {
  service.logger.fatal({ err: error }, 'worker-cpu could not start');
  await service.shutdown.shutdown('startup failure');
  process.exit(1);
}
