import { createHash } from 'node:crypto';
import { jsonReply, type SimReply } from '../http-io.js';
import { deriveSeed, SeededRandom } from '../seeded-random.js';
import { sentence, words } from '../generated-text.js';
import { matchPath, type EndpointDefinition } from './endpoint.js';

const SUPPORTED_PARTS = ['id', 'snippet', 'contentDetails', 'statistics', 'status'] as const;
type Part = (typeof SUPPORTED_PARTS)[number];
const VIDEO_ID = /^[A-Za-z0-9_-]{11}$/;

/** Google's error envelope, as every Google API answers. */
function googleError(code: number, status: string, reason: string, message: string, extra: Record<string, unknown> = {}): SimReply {
  return jsonReply(code, { error: { code, message, errors: [{ message, domain: 'global', reason }], status, ...extra } });
}

function etagOf(value: unknown): string {
  return createHash('sha1').update(JSON.stringify(value)).digest('base64url');
}

function isoDuration(totalSeconds: number): string {
  const hours = Math.floor(totalSeconds / 3600);
  const minutes = Math.floor((totalSeconds % 3600) / 60);
  const seconds = totalSeconds % 60;
  return `PT${hours ? `${hours}H` : ''}${minutes ? `${minutes}M` : ''}${seconds || (!hours && !minutes) ? `${seconds}S` : ''}`;
}

/**
 * A made-up but stable video: the same id, seed and revision always give the same resource.
 * The revision only moves the statistics, as a re-fetch of a live video would.
 */
function videoResource(id: string, parts: ReadonlySet<Part>, seed: number, revision: number): Record<string, unknown> {
  const random = new SeededRandom(deriveSeed(seed, 'youtube-video', id));
  const live = new SeededRandom(deriveSeed(seed, 'youtube-statistics', id, revision));
  const publishedAt = new Date(Date.UTC(2020, 0, 1) + random.integer(0, 5 * 365) * 86_400_000 + random.integer(0, 86_399) * 1000);
  const video: Record<string, unknown> = { kind: 'youtube#video', id };
  if (parts.has('snippet')) {
    const thumbnail = (name: string, width: number, height: number) => ({ url: `https://i.ytimg.com/vi/${id}/${name}.jpg`, width, height });
    const title = sentence(random, 5).replace(/\.$/, '');
    const description = `${sentence(random, 14)} ${sentence(random, 10)}`;
    video.snippet = {
      publishedAt: publishedAt.toISOString().replace(/\.\d{3}Z$/, 'Z'),
      channelId: `UC${createHash('sha1').update(`channel-${id}`).digest('base64url').slice(0, 22)}`,
      title,
      description,
      thumbnails: {
        default: thumbnail('default', 120, 90),
        medium: thumbnail('mqdefault', 320, 180),
        high: thumbnail('hqdefault', 480, 360),
      },
      channelTitle: `${sentence(random, 2).replace(/\.$/, '')} Channel`,
      tags: words(random, 4),
      categoryId: String(random.pick([1, 2, 10, 17, 20, 22, 24, 26, 27, 28])),
      liveBroadcastContent: 'none',
      defaultAudioLanguage: 'en',
      localized: { title, description },
    };
  }
  if (parts.has('contentDetails')) {
    video.contentDetails = {
      duration: isoDuration(random.integer(30, 20 * 60)),
      dimension: '2d',
      definition: random.next() < 0.8 ? 'hd' : 'sd',
      caption: random.next() < 0.5 ? 'true' : 'false',
      licensedContent: random.next() < 0.3,
      contentRating: {},
      projection: 'rectangular',
    };
  }
  if (parts.has('status')) {
    video.status = { uploadStatus: 'processed', privacyStatus: 'public', license: 'youtube', embeddable: true, publicStatsViewable: true, madeForKids: false };
  }
  if (parts.has('statistics')) {
    const views = live.integer(1_000, 5_000_000);
    video.statistics = {
      viewCount: String(views),
      likeCount: String(Math.floor(views * live.between(0.01, 0.08))),
      favoriteCount: '0',
      commentCount: String(Math.floor(views * live.between(0.0005, 0.005))),
    };
  }
  return { ...video, etag: etagOf(video) };
}

function matchesIfNoneMatch(header: string | string[] | undefined, etag: string): boolean {
  if (!header) return false;
  const values = (Array.isArray(header) ? header.join(',') : header).split(',').map((value) => value.trim());
  return values.some((value) => value === '*' || value.replace(/^W\//, '').replace(/^"|"$/g, '') === etag);
}

/**
 * `GET /youtube/v3/videos` (videos.list). Ids of 11 characters exist unless they start with
 * `gone`; others are simply absent from `items`, as on YouTube. Answers carry an `ETag`, and a
 * matching `If-None-Match` gets 304.
 */
export const youtubeVideosList: EndpointDefinition = {
  id: 'youtube.videos.list',
  methods: ['GET'],
  bodyLimitBytes: 0,
  match: (pathname) => matchPath('/youtube/v3/videos', pathname),
  checkAuth(req, url, settings) {
    // As Google's APIs take it: the X-Goog-Api-Key header, or the `key` query parameter.
    const header = req.headers['x-goog-api-key'];
    const key = (Array.isArray(header) ? header[0] : header) || url.searchParams.get('key');
    if (!key) {
      return googleError(
        403,
        'PERMISSION_DENIED',
        'forbidden',
        "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
      );
    }
    if (key !== settings.apiKeys.youtube) {
      return googleError(400, 'INVALID_ARGUMENT', 'badRequest', 'API key not valid. Please pass a valid API key.', {
        details: [
          {
            '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
            reason: 'API_KEY_INVALID',
            domain: 'googleapis.com',
            metadata: { service: 'youtube.googleapis.com' },
          },
        ],
      });
    }
    return undefined;
  },
  // As the YouTube Data API answers its limits: 403, told apart from a refused key by the reason.
  rateLimited: (_retryAfterSeconds, reason) =>
    reason === 'quota'
      ? googleError(
          403,
          'PERMISSION_DENIED',
          'quotaExceeded',
          'The request cannot be completed because you have exceeded your <a href="/youtube/v3/getting-started#quota">quota</a>.',
        )
      : googleError(403, 'PERMISSION_DENIED', 'rateLimitExceeded', 'The request cannot be completed because you have exceeded the rate limit.'),
  serverError: (status) =>
    googleError(
      status,
      status === 503 ? 'UNAVAILABLE' : 'INTERNAL',
      status === 503 ? 'backendError' : 'internalError',
      'The service encountered an unexpected error. Please try again.',
    ),
  tooLarge: () => googleError(413, 'INVALID_ARGUMENT', 'badRequest', 'Request body too large.'),
  malformed: () => jsonReply(200, { kind: 'youtube#videoListResponse', etag: 42, items: { unexpected: true } }),
  async handle({ url, req, settings }) {
    const partParam = url.searchParams.get('part');
    if (!partParam) return googleError(400, 'INVALID_ARGUMENT', 'required', 'Required parameter: part');
    const parts = partParam
      .split(',')
      .map((part) => part.trim())
      .filter(Boolean);
    const unknown = parts.find((part) => !(SUPPORTED_PARTS as readonly string[]).includes(part));
    if (unknown) return googleError(400, 'INVALID_ARGUMENT', 'unknownPart', `'${unknown}'`);
    const idParam = url.searchParams.get('id');
    if (!idParam) {
      const filter =
        url.searchParams.has('chart') || url.searchParams.has('myRating')
          ? 'the simulator supports only the id filter'
          : 'No filter selected. Expected one of: myRating, chart, id';
      return googleError(400, 'INVALID_ARGUMENT', 'missingRequiredParameter', filter);
    }
    const ids = idParam
      .split(',')
      .map((id) => id.trim())
      .filter(Boolean);
    if (ids.length > 50) return googleError(400, 'INVALID_ARGUMENT', 'invalidFilters', 'The request specifies more than 50 video ids.');
    const wanted = new Set(parts as Part[]);
    const items = ids
      .filter((id) => VIDEO_ID.test(id) && !id.startsWith('gone'))
      .map((id) => videoResource(id, wanted, settings.seed, settings.youtubeRevision));
    const page = { kind: 'youtube#videoListResponse', items, pageInfo: { totalResults: items.length, resultsPerPage: items.length } };
    const etag = etagOf(page);
    if (matchesIfNoneMatch(req.headers['if-none-match'], etag)) return { status: 304, headers: { etag: `"${etag}"` }, body: undefined };
    return jsonReply(200, { ...page, etag }, { etag: `"${etag}"`, 'cache-control': 'private, max-age=0' });
  },
};
