import { createService, loadConfigOrExit, requireMigratedDatabase, sweepScratchDirs } from '@clipline/shared';
import type { Telemetry } from '@clipline/shared/telemetry';
import { startCpuWorker } from './cpu-worker.js';

/** Starts the worker-cpu process; `main.ts` calls this once tracing is up. */
export async function startWorkerCpu(telemetry: Telemetry): Promise<void> {
  const service = createService('worker-cpu', loadConfigOrExit());
  service.shutdown.installSignalHandlers();
  // First registered, so it runs last: spans of jobs released during the shutdown are exported too.
  service.shutdown.register('telemetry', () => telemetry.shutdown());
  await requireMigratedDatabase(service);
  // A process killed before (SIGKILL, out of memory) left its scratch folders in the temporary directory.
  const swept = await sweepScratchDirs();
  if (swept.length > 0) service.logger.info({ folders: swept }, 'removed scratch folders left by stopped processes');
  try {
    await startCpuWorker(service, { settings: service.config.cpuWorker });
  } catch (error) {
    service.logger.fatal({ err: error }, 'worker-cpu could not start');
    await service.shutdown.shutdown('startup failure');
    process.exit(1);
  }
}
