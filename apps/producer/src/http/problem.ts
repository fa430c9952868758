import type { ErrorRequestHandler, Response } from 'express';

/** An RFC 9457 problem answer. */
export class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
  }
}

export function sendProblem(res: Response, problem: HttpProblem, instance?: string): void {
  for (const [name, value] of Object.entries(problem.headers)) res.setHeader(name, value);
  res
    .status(problem.status)
    .type('application/problem+json')
    .send(
      JSON.stringify({
        type: `https://clipline.dev/problems/${problem.title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`,
        title: problem.title,
        status: problem.status,
        detail: problem.detail,
        ...(instance ? { instance } : {}),
        ...problem.extra,
      }),
    );
}

export const notFound = (detail: string) => new HttpProblem(404, 'Not Found', detail);
export const badRequest = (detail: string, errors?: { path: string; message: string }[]) =>
  new HttpProblem(400, 'Bad Request', detail, errors ? { errors } : {});
export const serviceUnavailable = (detail: string) => new HttpProblem(503, 'Service Unavailable', detail, {}, { 'retry-after': '5' });

/** A path whose %-escapes do not decode (`%ZZ`, or bytes that are not UTF-8). */
export const PATH_ESCAPE_PROBLEM =
  'the request path holds a malformed %-escape (a % without two hex digits, or bytes that are not UTF-8); write a literal % as %25';

interface BodyParserError {
  type?: string;
  status?: number;
  expose?: boolean;
  message?: string;
}

/**
 * The last middleware: known problems are sent as they are; body-parser failures become a 4xx
 * naming the problem; anything else is logged and answered 500 without internals.
 */
export function problemHandler(log: (error: unknown) => void): ErrorRequestHandler {
  return (error: unknown, req, res, next) => {
    if (res.headersSent) return next(error);
    if (error instanceof HttpProblem) return sendProblem(res, error, req.originalUrl);
    const parser = error as BodyParserError;
    if (parser && typeof parser.status === 'number' && parser.status >= 400 && parser.status < 500) {
      const detail =
        parser.type === 'entity.parse.failed'
          ? 'request body is not valid JSON'
          : parser.type === 'entity.too.large'
            ? 'request body is too large'
            : parser.type === 'encoding.unsupported' || parser.type === 'charset.unsupported'
              ? 'request body encoding is not supported; send UTF-8 JSON'
              : error instanceof URIError
                ? PATH_ESCAPE_PROBLEM
                : parser.expose && parser.message
                  ? parser.message
                  : 'request could not be read';
      const title = parser.status === 413 ? 'Content Too Large' : parser.status === 415 ? 'Unsupported Media Type' : 'Bad Request';
      return sendProblem(res, new HttpProblem(parser.status, title, detail), req.originalUrl);
    }
    log(error);
    return sendProblem(res, new HttpProblem(500, 'Internal Server Error', 'an unexpected error occurred; it has been logged'), req.originalUrl);
  };
}
