import { createService, loadConfigOrExit } from '@clipline/shared';
import { startIoWorker } from './io-worker.js';
import { loadProviderSettings } from './providers/index.js';

const service = createService('worker-io', loadConfigOrExit());
const providers = loadConfigOrExit(process.env, loadProviderSettings);
service.shutdown.installSignalHandlers();
try {
  await startIoWorker(service, { providers });
} catch (error) {
  service.logger.fatal({ err: error }, 'worker-io could not start');
  await service.shutdown.shutdown('startup failure');
  process.exit(1);
}
