import type { Response } from 'express';

/**
 * Answers with an RFC 9457 problem document. Every refusal of the dashboard goes through here,
 * so a script driving Bull Board's API sees the same shape for 401, 403 and 429.
 */
export function sendProblem(res: Response, status: number, title: string, detail: string, headers: Record<string, string> = {}): void {
  res
    .status(status)
    .set(headers)
    .type('application/problem+json')
    .send(JSON.stringify({ type: `https://clipline.dev/problems/${title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`, title, status, detail }));
}
