/** API keys kept hashed in the database (the one `clipline keys` administers). */
import { createHash, randomUUID } from 'node:crypto';
import { ApiKeysRepository, portableSql } from '@clipline/shared';
import { createTestEnvironment, type TestEnvironment } from '../../../tests/helpers/services.js';

let env: TestEnvironment;
let keys: ApiKeysRepository;

beforeAll(async () => {
  env = await createTestEnvironment();
  keys = new ApiKeysRepository(env.db);
});

afterAll(async () => {
  await env.cleanup();
});

const KEY_FORMAT = /^(cl_[0-9A-Za-z]{12})_([0-9A-Za-z]{32})$/;

async function row(id: string) {
  return env.db.selectFrom('api_keys').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
}

describe('create', () => {
  it('returns the plain key once and stores only its SHA-256 and public prefix', async () => {
    const created = await keys.create('  billing service  ');
    const [, prefix, secret] = KEY_FORMAT.exec(created.key) ?? [];
    expect(prefix).toBe(created.prefix);
    // 32 base62 characters carry log2(62) * 32 ≈ 190 bits.
    expect(secret).toHaveLength(32);
    expect(Math.log2(62) * secret!.length).toBeGreaterThan(128);
    expect(created.name).toBe('billing service');
    const stored = await row(created.id);
    expect(stored.key_hash.equals(createHash('sha256').update(created.key).digest())).toBe(true);
    expect(stored).toMatchObject({ name: 'billing service', prefix: created.prefix, revoked_at: null, last_used_at: null });
    const everything = JSON.stringify(await env.db.selectFrom('api_keys').selectAll().execute());
    expect(everything).not.toContain(secret);
  });

  it('draws independent keys: 200 keys, 200 different prefixes and secrets', async () => {
    const created = await Promise.all(Array.from({ length: 200 }, (_, index) => keys.create(`bulk ${index}`)));
    expect(new Set(created.map((key) => key.prefix)).size).toBe(200);
    expect(new Set(created.map((key) => KEY_FORMAT.exec(key.key)?.[2])).size).toBe(200);
    await env.db.deleteFrom('api_keys').where('name', 'like', 'bulk %').execute();
  });

  it.each([[''], ['   '], ['x'.repeat(101)], ['line\nbreak']])('refuses the name %j, saying what a name may be', async (name) => {
    await expect(keys.create(name)).rejects.toThrow(/API key name must be 1-100 printable characters/);
  });
});

describe('verify', () => {
  it('accepts the key and refuses anything else without revealing why', async () => {
    const created = await keys.create('verify');
    expect(await keys.verify(created.key)).toEqual({ id: created.id, name: 'verify', tenant: 'verify', role: 'tenant' });
    const [, prefix, secret] = KEY_FORMAT.exec(created.key)!;
    const otherSecret = `${secret!.slice(0, -1)}${secret!.endsWith('A') ? 'B' : 'A'}`;
    for (const wrong of [
      `${prefix}_${otherSecret}`,
      `${created.key}x`,
      created.key.toUpperCase(),
      `cl_000000000000_${secret}`,
      'dev-key-clipline',
      '',
      `${prefix}`,
    ]) {
      expect(await keys.verify(wrong)).toBeNull();
    }
  });

  it('refuses a revoked key', async () => {
    const created = await keys.create('to revoke');
    await keys.revoke(created.id);
    expect(await keys.verify(created.key)).toBeNull();
  });

  it('records use at most once a minute', async () => {
    const created = await keys.create('usage');
    await keys.verify(created.key);
    const first = (await row(created.id)).last_used_at;
    expect(first).toBeInstanceOf(Date);
    await keys.verify(created.key);
    await keys.verify(created.key);
    expect((await row(created.id)).last_used_at).toEqual(first);
    // A use more than a minute after the recorded one is recorded again.
    await env.db
      .updateTable('api_keys')
      .set({ last_used_at: portableSql(env.db).secondsAgo(120) })
      .where('id', '=', created.id)
      .execute();
    const stale = (await row(created.id)).last_used_at!;
    await keys.verify(created.key);
    expect((await row(created.id)).last_used_at!.getTime()).toBeGreaterThan(stale.getTime() + 60_000);
  });
});

describe('revoke and list', () => {
  it('revokes by id, by prefix or by the whole key, once', async () => {
    const [byId, byPrefix, byKey] = await Promise.all([keys.create('by id'), keys.create('by prefix'), keys.create('by key')]);
    expect(await keys.revoke(byId.id)).toBe('revoked');
    expect(await keys.revoke(byId.id.toUpperCase())).toBe('already-revoked');
    expect(await keys.revoke(byPrefix.prefix)).toBe('revoked');
    expect(await keys.revoke(byKey.key)).toBe('revoked');
    expect(await keys.revoke(byKey.prefix)).toBe('already-revoked');
    for (const created of [byId, byPrefix, byKey]) expect((await row(created.id)).revoked_at).toBeInstanceOf(Date);
  });

  it('answers not-found for unknown and malformed references without touching other keys', async () => {
    const created = await keys.create('bystander');
    for (const reference of [randomUUID(), 'cl_000000000000', 'not-an-id', "'; drop table api_keys; --", '']) {
      expect(await keys.revoke(reference)).toBe('not-found');
    }
    expect(await keys.verify(created.key)).not.toBeNull();
  });

  it('lists every key oldest first with its state, never the key or its hash', async () => {
    const before = await keys.list();
    const created = await keys.create('listed');
    await keys.revoke(created.id);
    const after = await keys.list();
    expect(after).toHaveLength(before.length + 1);
    const listed = after.at(-1)!;
    expect(listed).toEqual({
      id: created.id,
      name: 'listed',
      prefix: created.prefix,
      createdAt: expect.any(Date),
      lastUsedAt: null,
      revokedAt: expect.any(Date),
      tenant: 'listed',
      role: 'tenant',
    });
    const times = after.map((key) => key.createdAt.getTime());
    expect(times).toEqual([...times].sort((a, b) => a - b));
  });
});
