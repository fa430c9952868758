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

/** Records that expire (idempotency keys after a day, webhook secrets replaced by a rotation): deleted by the purge. */
export interface ExpiringRecords {
  idempotencyKeys: { purgeExpired(): Promise<number> };
  webhookSecrets: { purgeExpired(): Promise<number>; resealUnderCurrentKey(): Promise<{ resealed: number; unopenable: number }> };
}

/**
 * Expired idempotency keys and webhook secrets deleted (kept forever otherwise, each key with the
 * answer it replays), and secrets sealed under an older key of ACCOUNTS_KEYRING moved to the
 * current one so the old key can go. Each step on its own: one that fails is reported in the
 * result, and does not keep the others from running.
 */
async function expiringRecords(expiring: ExpiringRecords | undefined): Promise<Record<string, number | string>> {
  if (!expiring) return {};
  const result: Record<string, number | string> = {};
  const step = async (name: string, run: () => Promise<Record<string, number>>) => {
    try {
      Object.assign(result, await run());
    } catch (error) {
      result[`${name}Error`] = reasonOf(error);
    }
  };
  await step('idempotencyKeys', async () => ({ idempotencyKeys: await expiring.idempotencyKeys.purgeExpired() }));
  await step('webhookSecrets', async () => ({ webhookSecrets: await expiring.webhookSecrets.purgeExpired() }));
  await step('webhookSecretsReseal', async () => {
    const { resealed, unopenable } = await expiring.webhookSecrets.resealUnderCurrentKey();
    return { webhookSecretsResealed: resealed, webhookSecretsUnopenable: unopenable };
  });
  return result;
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
      return { resumed, released, ...expired, orphanFolders: orphans.removed, orphanBytes: orphans.bytesRemoved, ...(await expiringRecords(deps.expiring)) };
    },
    'measure-storage': async () => {
      const bytes = await deps.storage.totalSize();
      await deps.ledger.setBytes(bytes);
      return { bytes };
    },
  };
}
