import http from 'node:http';
import type { Express } from 'express';

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  413: 'Content Too Large',
  414: 'URI Too Long',
  431: 'Request Header Fields Too Large',
};

/**
 * The HTTP server of the producer. Requests Node's parser refuses before express sees them
 * (overlong URLs or headers, malformed request lines) still get a problem+json answer.
 */
export function createProducerServer(app: Express): http.Server {
  const server = http.createServer({ maxHeaderSize: 16 * 1024 }, app);
  server.keepAliveTimeout = 65_000;
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    if (!socket.writable || (error as { code?: string }).code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const status = error.code === 'HPE_HEADER_OVERFLOW' ? 431 : error.code === 'HPE_URI_TOO_LONG' ? 414 : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    const body = JSON.stringify({
      type: `https://clipline.dev/problems/${REASONS[status]!.toLowerCase().replace(/ /g, '-')}`,
      title: REASONS[status],
      status,
      detail: status === 431 ? 'request line or headers are larger than 16 KiB' : 'the request could not be parsed as HTTP',
    });
    socket.end(
      `HTTP/1.1 ${status} ${REASONS[status]}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
  return server;
}
