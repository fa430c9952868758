/**
 * A submitter's webhook endpoint that is down for a while: it answers its first requests with
 * the statuses of a plan (503, 503, …) and 200 after that, and records every request it got.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedWebhook {
  /** Date.now() when the request body had arrived. */
  at: number;
  path: string;
  body: string;
  headers: http.IncomingHttpHeaders;
  /** The status this receiver answered. */
  answered: number;
}

export class FlakyWebhookReceiver {
  readonly received: ReceivedWebhook[] = [];

  private constructor(
    private readonly server: http.Server,
    readonly baseUrl: string,
  ) {}

  /** `failures`: statuses of the first answers, in order; every later request gets 200. */
  static async start(failures: readonly number[]): Promise<FlakyWebhookReceiver> {
    const plan = [...failures];
    let receiver: FlakyWebhookReceiver | undefined;
    const server = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (body += chunk));
      req.on('end', () => {
        const answered = plan.shift() ?? 200;
        receiver?.received.push({ at: Date.now(), path: req.url ?? '', body, headers: req.headers, answered });
        res.writeHead(answered, { 'content-type': 'text/plain' }).end(answered === 200 ? 'ok' : 'down for maintenance');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    receiver = new FlakyWebhookReceiver(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return receiver;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
