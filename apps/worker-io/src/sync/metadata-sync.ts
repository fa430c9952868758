import { syncQueue, type ExternalMetadataRepository, type JobQueues, type Processors } from '@clipline/shared';
import { ProviderNotConfiguredError, ProviderPermanentError, toJobError, type ProviderClients } from '../providers/index.js';

export interface MetadataSyncDependencies {
  providers: ProviderClients;
  external: ExternalMetadataRepository;
  jobs: JobQueues;
  /** How often the schedule runs; a tracked video is refreshed at most once per interval. */
  intervalMs: number;
}

/**
 * YouTube metadata of tracked videos: fetched when the video is submitted, then refreshed by a
 * BullMQ job scheduler. Refreshes go through the Redis response cache, so an unchanged video
 * costs a conditional request (If-None-Match → 304), not a full answer.
 */
export function syncProcessors(deps: MetadataSyncDependencies): Processors<typeof syncQueue> {
  return {
    'refresh-metadata': async (job) => {
      const youtubeId = await deps.external.youtubeIdOf(job.data.videoId);
      if (!youtubeId) return { skipped: 'the video is not linked to YouTube' };
      if (!deps.providers.youtube.configured) return { skipped: 'no YouTube API key configured (YOUTUBE_API_KEY)' };
      try {
        const { metadata, cache } = await deps.providers.youtubeMetadata.videoMetadata(youtubeId, { revalidate: true }, { signal: job.signal });
        await deps.external.save(job.data.videoId, 'youtube', youtubeId, metadata);
        return { cache };
      } catch (error) {
        if (error instanceof ProviderNotConfiguredError) return { skipped: error.message };
        // YouTube has no such public video (deleted, private, mistyped): that is what is known of
        // it now, and recording it puts the video at the back of the refresh order. Left unfetched,
        // it came first in every run, one wasted call each, and a thousand such held every other
        // video back. The job still fails, with the reason.
        if (error instanceof ProviderPermanentError && error.status === 404) {
          await deps.external.save(job.data.videoId, 'youtube', youtubeId, { unavailable: error.message });
        }
        throw toJobError(error);
      }
    },
    'sync-metadata': async () => {
      const due = await deps.external.dueForRefresh(Math.floor(deps.intervalMs / 1000), 1000);
      // One refresh per video per interval, whatever the number of replicas running the schedule.
      const round = Math.floor(Date.now() / deps.intervalMs);
      await Promise.all(due.map((videoId) => deps.jobs.add(syncQueue, 'refresh-metadata', { videoId }, { jobId: `${videoId}-refresh-${round}` })));
      return { enqueued: due.length };
    },
  };
}
