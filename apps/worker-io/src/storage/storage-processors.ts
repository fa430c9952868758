import {
  finishInterruptedPurges,
  purgeExpiredVideos,
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

/** Records that expire (idempotency keys after a day, webhook secrets replaced by a rotation): deleted by the purge. */
export interface ExpiringRecords {
  idempotencyKeys: { purgeExpired(): Promise<number> };
  webhookSecrets: { purgeExpired(): Promise<number>; resealUnderCurrentKey(): Promise<{ resealed: number; unopenable: number }> };
}

/** The storage lifecycle: sources released when their video finishes, videos purged after retention. */
export function storageProcessors(deps: VideoPurgeDependencies & { expiring?: ExpiringRecords }, settings: StorageSettings): Processors<typeof storageQueue> {
  return {
    'release-source': async (job) => {
      if (settings.keepSources) return { released: null, reason: 'KEEP_SOURCES is set' };
      return releaseVideoSource(deps, job.data.videoId);
    },
    'purge-expired': async () => {
      // Interrupted purges first: their rows are gone, so nothing else would ever find their files.
      const resumed = await finishInterruptedPurges(deps);
      let released = 0;
      if (!settings.keepSources) {
        for (const videoId of await deps.videos.finishedWithSource(SOURCE_SWEEP_AFTER_SECONDS, 200)) {
          if ((await releaseVideoSource(deps, videoId)).released) released++;
        }
      }
      const expired = await purgeExpiredVideos(deps, { retentionDays: settings.retentionDays });
      // Folders written after their video was purged (by a job still running then).
      const orphans = await removeOrphanedVideoFolders(deps);
      // Only their expiry deleted these before: kept forever otherwise, each with the answer it replays.
      const idempotencyKeys = (await deps.expiring?.idempotencyKeys.purgeExpired()) ?? 0;
      const webhookSecrets = (await deps.expiring?.webhookSecrets.purgeExpired()) ?? 0;
      // Secrets sealed under an older key of ACCOUNTS_KEYRING move to the current one, so the old key can go.
      const resealed = await deps.expiring?.webhookSecrets.resealUnderCurrentKey();
      return {
        ...(resealed ? { webhookSecretsResealed: resealed.resealed, webhookSecretsUnopenable: resealed.unopenable } : {}),
        resumed,
        released,
        ...expired,
        orphanFolders: orphans.removed,
        orphanBytes: orphans.bytesRemoved,
        idempotencyKeys,
        webhookSecrets,
      };
    },
    'measure-storage': async () => {
      const bytes = await deps.storage.totalSize();
      await deps.ledger.setBytes(bytes);
      return { bytes };
    },
  };
}
