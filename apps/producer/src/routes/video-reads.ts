import path from 'node:path';
import express, { type Response, type Router } from 'express';
import type { AiResultsRepository, AnalysisRepository, ExternalMetadataRepository, LocalStorage, VideosRepository } from '@clipline/shared';
import { videoIdParam, videoListQuery } from '../api-schemas.js';
import { scopeOf } from '../http/auth.js';
import { HttpProblem, notFound } from '../http/problem.js';
import { fromDatabase, parse, present, presentClip, videoIdOf } from './route-helpers.js';

export interface ReadDependencies {
  videos: VideosRepository;
  analyses: AnalysisRepository;
  results: AiResultsRepository;
  external: ExternalMetadataRepository;
  storage: LocalStorage;
}

const CLIP_FILES = new Set(['file', 'thumbnail', 'voiceover']);
const CONTENT_TYPES: Record<string, string> = { mp4: 'video/mp4', jpg: 'image/jpeg', png: 'image/png', mp3: 'audio/mpeg' };

/** What a conditional or ranged download is refused with, and the headers that describe the file. */
const SEND_REFUSALS: Record<number, string> = { 412: 'Precondition Failed', 416: 'Range Not Satisfiable' };
const FILE_HEADERS = ['cache-control', 'content-disposition', 'etag', 'last-modified', 'accept-ranges'];

/**
 * Streams a stored file; a file missing from storage is a 404 naming the clip. A download is a
 * tenant's own: caches may keep it for the caller only (`private`), never for whoever asks a
 * shared cache next. A `Range` or `If-Match` the file cannot meet is a 416 or 412 problem.
 */
function sendStored(res: Response, storage: LocalStorage, key: string, clipId: string): Promise<void> {
  // Set with the file's other headers, once it is found: a missing file's 404 is not kept an hour.
  const headers = { 'cache-control': 'private, max-age=3600' };
  return new Promise<void>((resolve, reject) =>
    // Served relative to the storage root: only the key's own segments are checked for dot
    // files, so a storage directory such as `.data/storage` does not turn every download into 403.
    res.sendFile(path.relative(storage.root, storage.pathOf(key)), { root: storage.root, dotfiles: 'deny', cacheControl: false, headers }, (error) => {
      if (!error) return resolve();
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return reject(notFound(`the file of clip ${clipId} is missing from storage`));
      if (res.headersSent) return resolve();
      const status = (error as { status?: number }).status ?? 500;
      const refusal = SEND_REFUSALS[status];
      if (!refusal) return reject(error);
      for (const header of FILE_HEADERS) res.removeHeader(header);
      const detail =
        status === 416
          ? `the requested range is outside the file (Content-Range gives its size)`
          : 'the file does not match the If-Match or If-Unmodified-Since condition';
      reject(new HttpProblem(status, refusal, detail));
    }),
  );
}

/** Lists, reads and file downloads of videos, each in the caller's scope. */
export function readRoutes(deps: ReadDependencies): Router {
  const router = express.Router();

  router.get('/videos', async (req, res) => {
    const query = parse(videoListQuery, req.query);
    const filters = { ...(query.status ? { status: query.status } : {}), ...(query.cursor ? { cursor: query.cursor } : {}) };
    const page = await fromDatabase(deps.videos.list({ scope: scopeOf(res), limit: query.limit, ...filters }));
    res.json({ items: page.items.map(present), nextCursor: page.nextCursor });
  });

  router.get('/videos/:id', async (req, res) => {
    const id = videoIdOf(req);
    const video = await fromDatabase(deps.videos.find(id, scopeOf(res)));
    if (!video) throw notFound(`no video with id ${id}`);
    const [clips, extras, transcript, external] = await fromDatabase(
      Promise.all([
        deps.analyses.listClips(id),
        deps.results.clipExtras(id),
        deps.results.transcript(id),
        video.youtubeId ? deps.external.find(id) : undefined,
      ]),
    );
    res.json({
      ...present(video),
      youtube: external ? { ...external.data, fetchedAt: external.fetchedAt } : null,
      transcript: transcript ?? null,
      clips: clips.map((clip) => presentClip(id, clip, extras.get(clip.id))),
    });
  });

  router.get('/videos/:id/clips/:clipId/:file', async (req, res) => {
    const id = videoIdOf(req);
    const clipId = String(req.params.clipId).toLowerCase();
    const file = String(req.params.file);
    if (!CLIP_FILES.has(file)) throw notFound(`no route for GET ${`${req.baseUrl}${req.path}`.slice(0, 200)}`);
    if (!videoIdParam.safeParse(clipId).success) throw notFound(`no clip with id "${clipId.slice(0, 100)}"`);
    // The video is looked up in the caller's scope first: another tenant's clip is a missing one.
    if (!(await fromDatabase(deps.videos.status(id, scopeOf(res))))) throw notFound(`no video with id ${id}`);
    const clip = await fromDatabase(deps.analyses.findClip(clipId));
    if (!clip || clip.videoId !== id) throw notFound(`video ${id} has no clip ${clipId}`);
    const extras = (await fromDatabase(deps.results.clipExtras(id))).get(clipId);
    const key = file === 'file' ? clip.storageKey : file === 'voiceover' ? (extras?.voiceoverKey ?? null) : (extras?.thumbnailKey ?? clip.thumbnailKey);
    if (clip.status !== 'rendered' || !key) throw new HttpProblem(409, 'Conflict', `clip ${clipId} has no ${file} yet (clip is ${clip.status})`);
    const extension = path.extname(key).slice(1).toLowerCase();
    res.type(CONTENT_TYPES[extension] ?? 'application/octet-stream');
    res.setHeader('content-disposition', `inline; filename="clip-${clip.clipIndex}-${file}.${extension}"`);
    await sendStored(res, deps.storage, key, clipId);
  });

  return router;
}
