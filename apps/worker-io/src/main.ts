import { createService, loadConfigOrExit } from '@clipline/shared';
import { startIoWorker } from './io-worker.js';
import { loadProviderSettings } from './providers/index.js';

const service = createService('worker-io', loadConfigOrExit());
const providers = loadConfigOrExit(process.env, loadProviderSettings);
if (service.config.env === 'production' && process.env.UPSTREAM_SIM_URL) {
  // The simulator answers with made-up content: never let it stand in for the real providers there.
  process.stderr.write('clipline: invalid environment:\n  UPSTREAM_SIM_URL: the upstream simulator is refused in production\n');
  process.exit(78);
}
service.shutdown.installSignalHandlers();
try {
  await startIoWorker(service, { providers });
} catch (error) {
  service.logger.fatal({ err: error }, 'worker-io could not start');
  await service.shutdown.shutdown('startup failure');
  process.exit(1);
}
