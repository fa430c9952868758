import { z } from 'zod';
import type { CallOptions } from './call-options.js';
import { ProviderPermanentError } from './provider-errors.js';
import type { CacheOutcome, ResponseCache } from './response-cache.js';
import type { YouTubeClient, YouTubeVideo } from './youtube.js';

export const videoMetadataSchema = z.object({
  videoId: z.string(),
  title: z.string(),
  description: z.string(),
  channelId: z.string(),
  channelTitle: z.string(),
  publishedAt: z.string(),
  durationSeconds: z.number().nonnegative().nullable(),
  tags: z.array(z.string()),
  thumbnailUrl: z.string().nullable(),
  viewCount: z.number().int().nullable(),
  likeCount: z.number().int().nullable(),
  commentCount: z.number().int().nullable(),
});

/** What clipline keeps of a YouTube video. */
export type VideoMetadata = z.output<typeof videoMetadataSchema>;

/** Seconds of an ISO 8601 duration as YouTube writes them (`PT1H2M3S`, `P1DT2H`), or null. */
export function isoDurationSeconds(duration: string): number | null {
  const match = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/.exec(duration);
  if (!match || duration === 'P' || duration.endsWith('T')) return null;
  const [, days = '0', hours = '0', minutes = '0', seconds = '0'] = match;
  return Number(days) * 86_400 + Number(hours) * 3600 + Number(minutes) * 60 + Number(seconds);
}

const count = (value: string | undefined) => (value === undefined ? null : Number.parseInt(value, 10));

function toMetadata(video: YouTubeVideo): VideoMetadata {
  const thumbnails = video.snippet?.thumbnails ?? {};
  const best = thumbnails.maxres ?? thumbnails.standard ?? thumbnails.high ?? thumbnails.medium ?? thumbnails.default;
  return {
    videoId: video.id,
    title: video.snippet?.title ?? '',
    description: video.snippet?.description ?? '',
    channelId: video.snippet?.channelId ?? '',
    channelTitle: video.snippet?.channelTitle ?? '',
    publishedAt: video.snippet?.publishedAt ?? '',
    durationSeconds: video.contentDetails ? isoDurationSeconds(video.contentDetails.duration) : null,
    tags: video.snippet?.tags ?? [],
    thumbnailUrl: best?.url ?? null,
    viewCount: count(video.statistics?.viewCount),
    likeCount: count(video.statistics?.likeCount),
    commentCount: count(video.statistics?.commentCount),
  };
}

/** YouTube video metadata through the response cache, revalidated with ETags. */
export class YouTubeMetadata {
  constructor(
    private readonly client: YouTubeClient,
    private readonly cache: ResponseCache<typeof videoMetadataSchema>,
  ) {}

  /**
   * Metadata of one video. Throws ProviderPermanentError when YouTube has no such (public)
   * video, and the other ProviderErrors of the client. `revalidate` skips the TTL and asks
   * YouTube with the stored ETag (what a scheduled sync wants).
   */
  async videoMetadata(
    videoId: string,
    request: { revalidate?: boolean } = {},
    options: CallOptions = {},
  ): Promise<{ metadata: VideoMetadata; cache: CacheOutcome }> {
    const { value, outcome } = await this.cache.get(
      videoId,
      async (etag) => {
        const answer = await this.client.listVideos([videoId], etag ? { etag } : {}, options);
        if (answer.notModified) return answer;
        const video = answer.items.find((item) => item.id === videoId);
        if (!video)
          throw new ProviderPermanentError('youtube', `YouTube has no public video "${videoId}" (private, deleted or a mistyped id)`, { status: 404 });
        return { notModified: false, value: toMetadata(video), etag: answer.etag };
      },
      request,
    );
    return { metadata: value, cache: outcome };
  }
}
