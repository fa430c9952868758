/**
 * The audit of queue actions and the videos-by-status count of the dashboard's overview, on
 * PostgreSQL, MariaDB and SQLite.
 */
import { randomUUID } from 'node:crypto';
import { QueueActionsRepository, VideosRepository } from '@clipline/shared';
import { createTestDatabase, TEST_DATABASE_ENGINES, type TestDatabase } from '../helpers/services.js';

describe.each(TEST_DATABASE_ENGINES)('on $name', ({ url }) => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase(url);
  });

  afterAll(async () => {
    await database?.cleanup();
  });

  it('records queue actions and lists them newest first, values read back as written', async () => {
    const audit = new QueueActionsRepository(database.db);
    const first = await audit.start({
      actor: { name: 'ops-key', kind: 'api-key', tenant: 'acme' },
      action: 'retry-failed',
      queue: 'ingest',
      reasonFilter: 'timeout ✓ "quoted"',
    });
    await new Promise((resolve) => setTimeout(resolve, 5));
    await audit.finish(first, { affected: 12 });
    const second = await audit.start({ actor: { name: 'admin', kind: 'dashboard' }, action: 'pause', queue: 'render', reasonFilter: null });
    const rows = await audit.recent(10);
    expect(rows.map((row) => row.id)).toEqual([second, first]);
    expect(rows[1]).toEqual({
      id: first,
      actor: 'ops-key',
      actorKind: 'api-key',
      tenant: 'acme',
      action: 'retry-failed',
      queue: 'ingest',
      reasonFilter: 'timeout ✓ "quoted"',
      reasonMatch: 'contains',
      detail: null,
      affected: 12,
      createdAt: expect.any(Date),
      finishedAt: expect.any(Date),
      error: null,
    });
    expect(rows[1]!.finishedAt!.getTime()).toBeGreaterThan(rows[1]!.createdAt.getTime());
    // Written before it runs: not finished yet. One that failed says why, a NUL made visible.
    expect(rows[0]).toMatchObject({ tenant: null, reasonFilter: null, affected: 0, finishedAt: null, error: null });
    await audit.finish(second, { affected: 0, error: 'Connection is closed \u0000' });
    expect((await audit.recent(1))[0]).toMatchObject({ id: second, finishedAt: expect.any(Date), error: 'Connection is closed \ufffd' });
    // Newest first is by creation time, in milliseconds on MariaDB and SQLite: each action below
    // is started in a millisecond of its own, or the two of one millisecond could come either way.
    const nextMillisecond = () => new Promise((resolve) => setTimeout(resolve, 3));
    // A group's action keeps how its filter was matched.
    await nextMillisecond();
    const grouped = await audit.start({
      actor: { name: 'admin', kind: 'dashboard' },
      action: 'discard-failed',
      queue: 'ingest',
      reasonFilter: 'timeout',
      reasonMatch: 'group',
    });
    expect((await audit.recent(1))[0]).toMatchObject({ id: grouped, reasonFilter: 'timeout', reasonMatch: 'group', detail: null });
    // A Bull Board action keeps the request as asked.
    await nextMillisecond();
    const board = await audit.start({
      actor: { name: 'admin', kind: 'dashboard' },
      action: 'board',
      queue: 'ingest',
      reasonFilter: null,
      detail: 'PUT /api/queues/ingest/empty',
    });
    expect((await audit.recent(1))[0]).toMatchObject({ id: board, action: 'board', detail: 'PUT /api/queues/ingest/empty' });
    expect(Math.abs((rows[0]?.createdAt.getTime() ?? 0) - Date.now())).toBeLessThan(60_000);
    expect(await audit.recent(1)).toHaveLength(1);
  });

  it('counts videos by status, every status present', async () => {
    const videos = new VideosRepository(database.db);
    const ids = [randomUUID(), randomUUID(), randomUUID()];
    for (const id of ids) await videos.create({ id, source: '/tmp/a.mp4', title: null, steps: ['ingest'] });
    await videos.setStatus(ids[0] as string, 'processing');
    expect(await videos.countByStatus()).toEqual({ queued: 2, processing: 1, completed: 0, failed: 0, cancelled: 0 });
  });
});
