/**
 * An Idempotency-Key's answer is stored before it is sent; a store that fails for a moment (the
 * database blinking) is tried again, so a retry of the request replays it instead of running it
 * again once the key's lease has passed.
 */
import express from 'express';
import request from 'supertest';
import { IdempotencyRepository } from '@clipline/shared';
import { idempotent } from '../src/http/idempotency.js';
import { createTestEnvironment, type TestEnvironment } from '../../../tests/helpers/services.js';

let env: TestEnvironment;

beforeAll(async () => {
  env = await createTestEnvironment();
});

afterAll(async () => {
  await env.cleanup();
});

class BlinkingRepository extends IdempotencyRepository {
  failures = 2;
  override async complete(...args: Parameters<IdempotencyRepository['complete']>): Promise<boolean> {
    if (this.failures-- > 0) throw new Error('Connection terminated unexpectedly');
    return super.complete(...args);
  }
}

it('stores the answer through a blinking database, and a retry replays it without running the request again', async () => {
  const repository = new BlinkingRepository(env.db);
  let runs = 0;
  const app = express();
  app.use(express.json());
  app.use((_req, res, next) => {
    res.locals.caller = { principal: 'config:blink', tenant: 'blink', admin: false };
    next();
  });
  app.post(
    '/things',
    idempotent(repository, (_req, res) => {
      runs += 1;
      res.status(202).json({ id: `thing-${runs}` });
    }),
  );
  const first = await request(app).post('/things').set('idempotency-key', 'blink-1').send({ a: 1 });
  expect([first.status, first.body]).toEqual([202, { id: 'thing-1' }]);
  expect(repository.failures).toBe(-1);
  const again = await request(app).post('/things').set('idempotency-key', 'blink-1').send({ a: 1 });
  expect([again.status, again.body, again.headers['idempotent-replayed']]).toEqual([202, { id: 'thing-1' }, 'true']);
  expect(runs).toBe(1);
});
