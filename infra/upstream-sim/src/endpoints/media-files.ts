import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { bytesReply, type SimReply } from '../http-io.js';
import type { EndpointDefinition } from './endpoint.js';

const CONTENT_TYPES: Record<string, string> = {
  '.mp4': 'video/mp4',
  '.m4v': 'video/mp4',
  '.mov': 'video/quicktime',
  '.mkv': 'video/x-matroska',
  '.webm': 'video/webm',
  '.mp3': 'audio/mpeg',
  '.wav': 'audio/wav',
  '.m4a': 'audio/mp4',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

const text = (status: number, message: string, headers: Record<string, string> = {}): SimReply =>
  bytesReply(status, Buffer.from(`${message}\n`), 'text/plain; charset=utf-8', headers);

/** Parses a single `bytes=` range; multi-range requests get the whole file, as RFC 9110 allows. */
function byteRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  if (!header) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return undefined;
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return undefined;
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (start >= size || start > end) return 'unsatisfiable';
  return { start, end };
}

/** `GET|HEAD /media/<file>`: files of the configured directory, with `Range` support. */
export const mediaFiles: EndpointDefinition = {
  id: 'media',
  methods: ['GET', 'HEAD'],
  bodyLimitBytes: 0,
  match(pathname) {
    if (!pathname.startsWith('/media/')) return undefined;
    return { file: decodeURIComponent(pathname.slice('/media/'.length)) };
  },
  checkAuth: () => undefined,
  rateLimited: (retryAfterSeconds) => text(429, `too many requests; retry in ${retryAfterSeconds} s`),
  serverError: (status) => text(status, 'media server error'),
  tooLarge: () => text(413, 'request body too large'),
  malformed: () => bytesReply(200, Buffer.from('<!DOCTYPE html><html><body>not the file you asked for</body></html>'), 'video/mp4'),
  async handle({ req, params, settings }) {
    if (!settings.mediaDir) return text(404, 'the simulator has no media directory configured');
    const root = path.resolve(settings.mediaDir);
    const file = path.resolve(root, params.file ?? '');
    if (!file.startsWith(`${root}${path.sep}`)) return text(404, 'not found');
    const info = await stat(file).catch(() => undefined);
    if (!info?.isFile()) return text(404, 'not found');
    const headers: Record<string, string> = {
      'content-type': CONTENT_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream',
      'accept-ranges': 'bytes',
      'last-modified': info.mtime.toUTCString(),
      etag: `"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`,
    };
    const range = byteRange(req.headers.range, info.size);
    if (range === 'unsatisfiable') return text(416, 'range not satisfiable', { 'content-range': `bytes */${info.size}` });
    if (range) {
      const length = range.end - range.start + 1;
      return {
        status: 206,
        headers: { ...headers, 'content-range': `bytes ${range.start}-${range.end}/${info.size}`, 'content-length': String(length) },
        body: req.method === 'HEAD' ? undefined : createReadStream(file, { start: range.start, end: range.end }),
      };
    }
    return {
      status: 200,
      headers: { ...headers, 'content-length': String(info.size) },
      body: req.method === 'HEAD' ? undefined : createReadStream(file),
    };
  },
};
