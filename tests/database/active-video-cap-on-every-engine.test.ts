/**
 * The fair-use cap on a tenant's unfinished videos, decided as the videos are written, on each
 * engine: submissions of one tenant arriving together are counted one after another, so no more
 * are stored than the cap allows, while another tenant's are not held back by them.
 */
import { randomUUID } from 'node:crypto';
import { ActiveVideoLimitError, inTenantTransaction, isRedisOrDatabaseOutage, VideosRepository, type Db } from '@clipline/shared';
import { createTestDatabase, TEST_DATABASE_ENGINES, type TestDatabase } from '../helpers/services.js';

describe.each(TEST_DATABASE_ENGINES)('the active video cap on $name', ({ url }) => {
  let database: TestDatabase;
  let db: Db;

  beforeAll(async () => {
    database = await createTestDatabase(url);
    db = database.db;
  });

  afterAll(async () => {
    await database?.cleanup();
  });

  const video = (tenant: string) => ({ id: randomUUID(), source: '/media/a.mp4', title: null, steps: ['ingest'], tenantId: tenant });

  async function stored(tenant: string): Promise<number> {
    return (await db.selectFrom('videos').select('id').where('tenant_id', '=', tenant).execute()).length;
  }

  it('stores no more than the cap of 30 submissions and batches sent at once, and refuses the rest naming the count', async () => {
    const [tenant, other] = [`cap-${randomUUID()}`, `other-${randomUUID()}`];
    const videos = new VideosRepository(db);
    await videos.create(video(tenant));
    const outcomes = await Promise.allSettled([
      ...Array.from({ length: 20 }, () => videos.createMany([video(tenant)], { tenant, limit: 4 })),
      ...Array.from({ length: 10 }, () => videos.createMany([video(tenant), video(tenant)], { tenant, limit: 4 })),
      videos.createMany([video(other), video(other)], { tenant: other, limit: 2 }),
    ]);
    const refused = outcomes.filter((outcome) => outcome.status === 'rejected').map((outcome) => (outcome as PromiseRejectedResult).reason);
    for (const reason of refused) expect(reason).toBeInstanceOf(ActiveVideoLimitError);
    expect(await stored(tenant)).toBeLessThanOrEqual(4);
    expect(await stored(tenant)).toBeGreaterThanOrEqual(3);
    expect(await stored(other)).toBe(2);
    const last = refused.at(-1) as ActiveVideoLimitError;
    expect(last.limit).toBe(4);
    expect(last.message).toMatch(/^this tenant has \d unfinished videos and may have at most 4 \(MAX_ACTIVE_VIDEOS_PER_TENANT\)/);
    // A finished video frees its place.
    const [first] = await db.selectFrom('videos').select('id').where('tenant_id', '=', tenant).execute();
    await videos.setStatus(first!.id, 'completed');
    const before = await stored(tenant);
    await expect(videos.createMany([video(tenant)], { tenant, limit: 4 })).resolves.toBeUndefined();
    expect(await stored(tenant)).toBe(before + 1);
  });
});

describe.each(TEST_DATABASE_ENGINES.filter((engine) => engine.name !== 'SQLite'))('a tenant transaction on $name', ({ url }) => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase(url);
  });

  afterAll(async () => {
    await database?.cleanup();
  });

  it('gives up waiting for another of the tenant after its timeout with an error the API answers 503 to; another tenant does not wait', async () => {
    const tenant = `t-${randomUUID()}`;
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const holder = inTenantTransaction(database.db, 'test', tenant, async () => {
      entered();
      await held;
    });
    await inside;
    const started = Date.now();
    const waiter = await inTenantTransaction(database.db, 'test', tenant, async () => 'ran', 1).catch((error: unknown) => error);
    expect(waiter).toMatchObject({ message: 'another test of this tenant held its lock for 1 s', code: 'ETIMEDOUT' });
    expect(isRedisOrDatabaseOutage(waiter)).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    await expect(inTenantTransaction(database.db, 'test', `other-${tenant}`, async () => 'ran', 1)).resolves.toBe('ran');
    release();
    await holder;
    await expect(inTenantTransaction(database.db, 'test', tenant, async () => 'ran', 1)).resolves.toBe('ran');
  });
});
