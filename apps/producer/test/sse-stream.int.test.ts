/**
 * The event stream's own life: a client that leaves while the stream is being set up (the route
 * awaits a slot first) must not leave a stream open behind it, holding its slot and timers.
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { EventStream } from '../src/http/sse.js';

it('closes at once a stream whose client left while it was being set up', async () => {
  const opened: EventStream[] = [];
  const app = express();
  app.get('/events', async (req, res) => {
    // The client goes away while the route still awaits (a slot, say), before the stream exists.
    await once(req.socket, 'close');
    const stream = new EventStream(req, res);
    opened.push(stream);
  });
  const server = http.createServer(app).listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const { port } = server.address() as AddressInfo;
    const client = http.get({ host: '127.0.0.1', port, path: '/events' });
    client.on('error', () => {});
    await new Promise((resolve) => setTimeout(resolve, 100));
    client.destroy();
    const deadline = Date.now() + 5_000;
    while (opened.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(opened).toHaveLength(1);
    const closedListeners: string[] = [];
    opened[0]!.whenClosed(() => closedListeners.push('released'));
    expect(opened[0]!.closed).toBe(true);
    expect(closedListeners).toEqual(['released']);
  } finally {
    server.closeAllConnections();
    server.close();
  }
});
