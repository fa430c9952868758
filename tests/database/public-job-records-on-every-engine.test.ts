/**
 * The public job route's records, written together for concurrent requests (group commit), on
 * each engine: every request learns its own outcome (recorded, or not for a video outside its
 * scope), rows of one turn of the event loop share a statement, and a row that makes its
 * statement fail fails alone.
 */
import { randomUUID } from 'node:crypto';
import { Registry } from 'prom-client';
import { ANY_TENANT, observeQueries, tenantScope, VideosRepository, type Db } from '@clipline/shared';
import { PublicJobRecords } from '../../apps/producer/src/routes/public-job-records.js';
import { createTestDatabase, TEST_DATABASE_ENGINES, type TestDatabase } from '../helpers/services.js';

describe.each(TEST_DATABASE_ENGINES)('public job records on $name', ({ url }) => {
  let database: TestDatabase;
  let db: Db;
  const mine = randomUUID();
  const theirs = randomUUID();

  beforeAll(async () => {
    database = await createTestDatabase(url);
    db = database.db;
    const videos = new VideosRepository(db);
    await videos.create({ id: mine, source: '/media/a.mp4', title: null, steps: ['ingest'], tenantId: 'tenant-a' });
    await videos.create({ id: theirs, source: '/media/b.mp4', title: null, steps: ['ingest'], tenantId: 'tenant-b' });
  });

  afterAll(async () => {
    await database?.cleanup();
  });

  /** Statements the recorder sent, by outcome, from the query histogram. */
  async function statements(registry: Registry, outcome: string): Promise<number> {
    const { values } = await registry.getSingleMetric('clipline_db_query_duration_seconds')!.get();
    return (
      values.find((value) => value.metricName?.endsWith('_count') && value.labels.query === 'publicJobs.recordForVideo' && value.labels.outcome === outcome)
        ?.value ?? 0
    );
  }

  const job = (tenant: string) => ({ id: randomUUID(), tenant, queue: 'sync', name: 'refresh-metadata' });

  async function storedIds(ids: string[]): Promise<Set<string>> {
    const rows = await db.selectFrom('public_jobs').select(['id', 'tenant_id']).where('id', 'in', ids).execute();
    return new Set(rows.map((row) => row.id));
  }

  it('answers each of 60 concurrent requests with its own outcome, in a few statements', async () => {
    const registry = new Registry();
    observeQueries(db, registry);
    const records = new PublicJobRecords(db, registry);
    // A's own video (recorded), B's video asked by A (not), a video nobody has (not), and an
    // operator's request about B's video (recorded): interleaved, all in one turn.
    const cases = Array.from({ length: 60 }, (_, index) => {
      switch (index % 4) {
        case 0:
          return { row: job('tenant-a'), video: mine, scope: tenantScope('tenant-a'), expected: true };
        case 1:
          return { row: job('tenant-a'), video: theirs, scope: tenantScope('tenant-a'), expected: false };
        case 2:
          return { row: job('tenant-a'), video: randomUUID(), scope: tenantScope('tenant-a'), expected: false };
        default:
          return { row: job('admin'), video: theirs, scope: ANY_TENANT, expected: true };
      }
    });
    const outcomes = await Promise.all(cases.map((item) => records.recordForVideo(item.row, item.video, item.scope)));
    expect(outcomes).toEqual(cases.map((item) => item.expected));
    const stored = await storedIds(cases.map((item) => item.row.id));
    for (const item of cases) expect(stored.has(item.row.id)).toBe(item.expected);
    // One statement per scope kind for the first turn, then whatever arrived meanwhile: far fewer than 60.
    const sent = await statements(registry, 'ok');
    expect(sent).toBeGreaterThanOrEqual(2);
    expect(sent).toBeLessThanOrEqual(6);
  });

  it('holds rows back while statements are in flight and sends them together', async () => {
    const registry = new Registry();
    observeQueries(db, registry);
    const records = new PublicJobRecords(db, registry, { maxInFlight: 1, maxBatch: 10 });
    // 35 rows in one turn: with one statement in flight and ten rows a statement, four statements.
    const rows = Array.from({ length: 35 }, () => job('tenant-a'));
    const outcomes = await Promise.all(rows.map((row) => records.recordForVideo(row, mine, tenantScope('tenant-a'))));
    expect(outcomes.every(Boolean)).toBe(true);
    expect(await statements(registry, 'ok')).toBe(4);
    expect((await storedIds(rows.map((row) => row.id))).size).toBe(35);
  });

  it('lets a row that breaks its statement fail alone', async () => {
    const registry = new Registry();
    observeQueries(db, registry);
    const records = new PublicJobRecords(db, registry);
    const good = Array.from({ length: 5 }, () => job('tenant-a'));
    // A row without a tenant: every engine refuses it (NOT NULL), and with it the statement it is in.
    const bad = { ...job('tenant-a'), tenant: null as unknown as string };
    const results = await Promise.allSettled([...good, bad].map((row) => records.recordForVideo(row, mine, tenantScope('tenant-a'))));
    expect(results.slice(0, 5).map((result) => result.status === 'fulfilled' && result.value)).toEqual([true, true, true, true, true]);
    expect(results[5]?.status).toBe('rejected');
    expect((await storedIds(good.map((row) => row.id))).size).toBe(5);
    expect(await statements(registry, 'error')).toBeGreaterThanOrEqual(2);
  });

  it('reads through a blink of the database which rows a committed statement wrote, without writing them again', async () => {
    /** The read of which rows were written fails the first `blinks` times, as a lost connection would. */
    class BlinkingRecords extends PublicJobRecords {
      blinks = 1;
      protected override async existing(ids: string[]): Promise<Set<string>> {
        if (this.blinks-- > 0) throw new Error('Connection terminated unexpectedly');
        return super.existing(ids);
      }
    }
    const registry = new Registry();
    observeQueries(db, registry);
    const records = new BlinkingRecords(db, registry);
    // Some rows are not written (a video outside the scope), so the statement's rows are read back.
    const cases = [
      { row: job('tenant-a'), video: mine, expected: true },
      { row: job('tenant-a'), video: theirs, expected: false },
      { row: job('tenant-a'), video: mine, expected: true },
    ];
    const outcomes = await Promise.all(cases.map((item) => records.recordForVideo(item.row, item.video, tenantScope('tenant-a'))));
    expect(records.blinks).toBe(-1);
    expect(outcomes).toEqual([true, false, true]);
    // Before, each row was written again alone: the written ones clashed with themselves and failed.
    expect(await statements(registry, 'error')).toBe(0);
    expect(await statements(registry, 'ok')).toBe(1);

    // The read fails for good: every request fails, and no row it may have written stays without its job.
    records.blinks = 10;
    const lost = [job('tenant-a'), job('tenant-a'), job('tenant-a')];
    const results = await Promise.allSettled(lost.map((row, index) => records.recordForVideo(row, index === 1 ? theirs : mine, tenantScope('tenant-a'))));
    expect(results.map((result) => result.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect((await storedIds(lost.map((row) => row.id))).size).toBe(0);
  });

  it('counts a row written by a statement whose answer was lost as recorded when it is tried again', async () => {
    const records = new PublicJobRecords(db);
    const row = job('tenant-a');
    // As if the statement had committed and the connection dropped before its answer.
    await db.insertInto('public_jobs').values({ id: row.id, tenant_id: row.tenant, queue: row.queue, name: row.name }).execute();
    expect(await records.recordForVideo(row, mine, tenantScope('tenant-a'))).toBe(true);
  });
});
