import { z } from 'zod';
import type { CallOptions } from './call-options.js';
import { parseAnswer } from './provider-answer.js';
import type { ProviderSettings } from './provider-config.js';
import { ProviderClient } from './provider-client.js';

const thumbnailSchema = z.object({ url: z.string(), width: z.number().int().optional(), height: z.number().int().optional() });

const videoSchema = z.object({
  id: z.string(),
  snippet: z
    .object({
      publishedAt: z.string(),
      channelId: z.string(),
      title: z.string(),
      description: z.string().default(''),
      channelTitle: z.string().default(''),
      tags: z.array(z.string()).default([]),
      categoryId: z.string().optional(),
      thumbnails: z.record(z.string(), thumbnailSchema).default({}),
    })
    .optional(),
  contentDetails: z.object({ duration: z.string(), definition: z.string().optional() }).optional(),
  statistics: z.object({ viewCount: z.string().optional(), likeCount: z.string().optional(), commentCount: z.string().optional() }).optional(),
});

export const videoListSchema = z.object({
  kind: z.literal('youtube#videoListResponse'),
  etag: z.string(),
  items: z.array(videoSchema),
});

export type YouTubeVideo = z.output<typeof videoSchema>;

/** A conditional `videos.list`: unchanged (304) or a fresh answer with its ETag. */
export type VideoListAnswer = { notModified: true } | { notModified: false; etag: string; items: YouTubeVideo[] };

/**
 * YouTube Data API v3 `videos.list`. GETs are idempotent, so the HTTP layer retries them on 5xx.
 * Not under the egress policy (packages/shared/src/egress.ts): its base URL is operator config
 * (the upstream simulator on loopback in tests), and a user only supplies the video id, which
 * goes into the query string; the thumbnail URLs it answers with are stored, never fetched.
 */
export class YouTubeClient extends ProviderClient<ProviderSettings['youtube']> {
  /**
   * Lists videos by id (at most 50). With `etag`, asks with If-None-Match and resolves to
   * `{notModified: true}` when YouTube answers 304.
   */
  async listVideos(ids: readonly string[], request: { etag?: string; parts?: readonly string[] } = {}, options: CallOptions = {}): Promise<VideoListAnswer> {
    if (ids.length === 0 || ids.length > 50) throw new RangeError(`videos.list takes 1 to 50 ids, got ${ids.length}`);
    const answer = await this.guard.run(
      () =>
        this.http.request({
          method: 'GET',
          path: 'youtube/v3/videos',
          searchParams: { part: (request.parts ?? ['snippet', 'contentDetails', 'statistics']).join(','), id: ids.join(',') },
          // The key goes in Google's header, not the query string, where traces and proxies record URLs.
          headers: { 'x-goog-api-key': this.settings.apiKey ?? '', ...(request.etag ? { 'if-none-match': `"${request.etag}"` } : {}) },
          ...options,
        }),
      options.signal,
    );
    if (answer.status === 304) return { notModified: true };
    const parsed = parseAnswer('youtube', 'videos.list answer', videoListSchema, answer.body);
    const header = answer.headers.etag?.replace(/^W\//, '').replace(/^"|"$/g, '');
    return { notModified: false, etag: header || parsed.etag, items: parsed.items };
  }
}
