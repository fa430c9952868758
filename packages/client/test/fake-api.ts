/** Answers of a fake producer API, for tests that drive the client or the CLI against a server of their own. */
import type http from 'node:http';

export function json(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': status >= 400 ? 'application/problem+json' : 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

export const problem = (status: number, title: string, detail: string) => ({ type: `https://clipline.dev/problems/${status}`, title, status, detail });

/** A video as the API shows it, with the fields a test sets. */
export function videoBody(id: string, status: string, progress: number) {
  return {
    id,
    status,
    progress,
    title: null,
    source: '/a.mp4',
    error: null,
    createdAt: '',
    updatedAt: '',
    completedAt: null,
    metadata: null,
    scenes: [],
    steps: [],
    links: { self: '' },
  };
}

export function openStream(res: http.ServerResponse, retryMs = 20) {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
  res.write(`retry: ${retryMs}\n\n`);
}

export function sendEvent(res: http.ServerResponse, videoId: string, id: number, type: string, status: string, progress: number) {
  res.write(`id: ${id}\nevent: ${type}\ndata: ${JSON.stringify(videoBody(videoId, status, progress))}\n\n`);
}
