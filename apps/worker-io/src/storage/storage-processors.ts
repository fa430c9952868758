import {
  finishInterruptedPurges,
  purgeExpiredVideos,
  reasonOf,
  releaseVideoSource,
  removeOrphanedVideoFolders,
  type Processors,
  type storageQueue,
  type VideoPurgeDependencies,
} from '@clipline/shared';

export interface StorageSettings {
  /** Keep sources after their video finished (KEEP_SOURCES). */
  keepSources: boolean;
  /** Days a finished video is kept (RETENTION_DAYS). */
  retentionDays: number;
}

/**
 * Seconds a finished video's source may stay before the sweep releases it: its own
 * `release-source` job normally does it at once; the sweep is for a job lost on the way.
 */
const SOURCE_SWEEP_AFTER_SECONDS = 600;

/** Records that expire (idempotency keys after a day, webhook secrets replaced by a rotation, public jobs' records after their jobs): deleted by the purge. */
export interface ExpiringRecords {
  idempotencyKeys: { purgeExpired(): Promise<number> };
  webhookSecrets: { purgeExpired(): Promise<number>; resealUnderCurrentKey(): Promise<{ resealed: number; unopenable: number }> };
  publicJobs: { purgeExpired(): Promise<number> };
}

/** One step of the purge: its counts go into the run's result, and a failure as `<name>Error`. */
type PurgeStep = [name: string, run: () => Promise<Record<string, number>>];

/**
 * Runs each step on its own, in order: one that fails (a statement past its timeout, a file it
 * cannot remove) is reported in the result and logged, and does not keep the later steps from
 * running, run after run; the key re-seal a keyring rotation waits for is one of them.
 */
async function runPurgeSteps(steps: readonly PurgeStep[], logger: { warn(fields: object, message: string): void }): Promise<Record<string, number | string>> {
  const result: Record<string, number | string> = {};
  for (const [name, run] of steps) {
    try {
      Object.assign(result, await run());
    } catch (error) {
      result[`${name}Error`] = reasonOf(error);
      logger.warn({ step: name, err: error }, 'a step of the storage purge failed; the others ran');
    }
  }
  return result;
}

/**
 * Expired idempotency keys, webhook secrets and public jobs' records deleted (kept forever
 * otherwise, each key with the answer it replays), and secrets sealed under an older key of
 * ACCOUNTS_KEYRING moved to the current one so the old key can go.
 */
function expiringRecordSteps(expiring: ExpiringRecords | undefined): PurgeStep[] {
  if (!expiring) return [];
  return [
    ['idempotencyKeys', async () => ({ idempotencyKeys: await expiring.idempotencyKeys.purgeExpired() })],
    ['webhookSecrets', async () => ({ webhookSecrets: await expiring.webhookSecrets.purgeExpired() })],
    [
      'webhookSecretsReseal',
      async () => {
        const { resealed, unopenable } = await expiring.webhookSecrets.resealUnderCurrentKey();
        return { webhookSecretsResealed: resealed, webhookSecretsUnopenable: unopenable };
      },
    ],
    ['publicJobs', async () => ({ publicJobRecords: await expiring.publicJobs.purgeExpired() })],
  ];
}

/** Sources of videos finished a while ago still on disk (their own release job was lost): released. */
async function releaseFinishedSources(deps: VideoPurgeDependencies): Promise<number> {
  let released = 0;
  for (const videoId of await deps.videos.finishedWithSource(SOURCE_SWEEP_AFTER_SECONDS, 200)) {
    if ((await releaseVideoSource(deps, videoId)).released) released++;
  }
  return released;
}

/** The storage lifecycle: sources released when their video finishes, videos purged after retention. */
export function storageProcessors(deps: VideoPurgeDependencies & { expiring?: ExpiringRecords }, settings: StorageSettings): Processors<typeof storageQueue> {
  return {
    'release-source': async (job) => {
      if (settings.keepSources) return { released: null, reason: 'KEEP_SOURCES is set' };
      return releaseVideoSource(deps, job.data.videoId);
    },
    'purge-expired': async (job) =>
      runPurgeSteps(
        [
          // Interrupted purges first: their rows are gone, so nothing else would ever find their files.
          ['resumed', async () => ({ resumed: await finishInterruptedPurges(deps) })],
          ['released', async () => ({ released: settings.keepSources ? 0 : await releaseFinishedSources(deps) })],
          ['expired', () => purgeExpiredVideos(deps, { retentionDays: settings.retentionDays })],
          [
            // Folders written after their video was purged (by a job still running then).
            'orphanFolders',
            async () => {
              const orphans = await removeOrphanedVideoFolders(deps);
              return { orphanFolders: orphans.removed, orphanBytes: orphans.bytesRemoved };
            },
          ],
          ...expiringRecordSteps(deps.expiring),
        ],
        job.logger,
      ),
    'measure-storage': async () => {
      const bytes = await deps.storage.totalSize();
      await deps.ledger.setBytes(bytes);
      return { bytes };
    },
  };
}
