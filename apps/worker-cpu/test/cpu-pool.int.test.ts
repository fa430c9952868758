import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { batchMetrics } from '../src/analysis/frame-metrics.js';
import { CpuPool } from '../src/analysis/pool.js';
import type { Keyring } from '@clipline/shared/crypto';

let pool: CpuPool;
let dir: string;

beforeAll(async () => {
  pool = new CpuPool({ threads: 2 });
  dir = await mkdtemp(path.join(os.tmpdir(), 'clipline-pool-'));
});

afterAll(async () => {
  await pool.close();
  await rm(dir, { recursive: true, force: true });
});

describe('CpuPool content hashing', () => {
  it('hashes a file inside a thread, equal to hashing it on the spot, without stalling the event loop', async () => {
    const file = path.join(dir, 'bytes.bin');
    const bytes = randomBytes(48 * 1024 * 1024);
    await writeFile(file, bytes);
    // A timer ticking while the hash is pending: on a blocked loop it could not tick at all before
    // the answer (hashing 48 MiB on the spot takes far longer than a few 1 ms ticks).
    let ticks = 0;
    let pending = true;
    const timer = setInterval(() => {
      if (pending) ticks += 1;
    }, 1);
    const hashing = pool.sha256File(file).finally(() => (pending = false));
    const hashed = await hashing;
    clearInterval(timer);
    expect(hashed).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(ticks).toBeGreaterThanOrEqual(3);
  });

  it('rejects a missing file with the path in the message', async () => {
    await expect(pool.sha256File(path.join(dir, 'missing.mp4'))).rejects.toThrow(/missing\.mp4/);
  });
});

describe('CpuPool password hashing and secrets', () => {
  const keyring: Keyring = { currentKeyId: 'k1', keys: { k1: randomBytes(32) } };

  it('hashes and verifies passwords in the threads', async () => {
    const encoded = await pool.hashPassword('hunter2 but longer', { logN: 12, r: 8, p: 1 });
    expect(encoded.startsWith('$scrypt$ln=12,r=8,p=1$')).toBe(true);
    await expect(pool.verifyPassword('hunter2 but longer', encoded)).resolves.toBe(true);
    await expect(pool.verifyPassword('hunter3 but longer', encoded)).resolves.toBe(false);
    await expect(pool.verifyPassword('x', 'garbage')).rejects.toThrow(/not an scrypt password hash/);
  });

  it('runs many default-cost hashes on all threads at once', async () => {
    const hashing = Promise.all(Array.from({ length: 4 }, (_, k) => pool.hashPassword(`password-${k}`)));
    // Four tasks on two threads: two run, two wait for a thread.
    expect(pool.threads).toBe(2);
    expect(pool.queued).toBe(2);
    const hashes = await hashing;
    expect(pool.queued).toBe(0);
    expect(new Set(hashes).size).toBe(4);
    await expect(pool.verifyPassword('password-3', hashes[3]!)).resolves.toBe(true);
  });

  it('hashes a sealed password without opening it on the main thread, bound to its context', async () => {
    const userId = '6f1c2a8e-0000-4000-8000-000000000001';
    const sealed = await pool.encryptSecret('my long passphrase', keyring, userId);
    const encoded = await pool.hashSealedPassword(sealed, keyring, userId, { logN: 12, r: 8, p: 1 });
    await expect(pool.verifyPassword('my long passphrase', encoded)).resolves.toBe(true);
    await expect(pool.hashSealedPassword(sealed, keyring, 'another-user')).rejects.toThrow(/does not authenticate/);
  });

  it('seals, opens and re-seals secrets across a key rotation', async () => {
    const token = await pool.encryptSecret('webhook-secret', keyring, 'video:1');
    const rotated: Keyring = { currentKeyId: 'k2', keys: { ...keyring.keys, k2: randomBytes(32) } };
    const resealed = await pool.reencryptSecret(token, rotated, 'video:1');
    expect(resealed.split('.')[1]).toBe('k2');
    await expect(pool.decryptSecret(resealed, rotated, 'video:1')).resolves.toBe('webhook-secret');
    await expect(pool.decryptSecret(resealed, keyring, 'video:1')).rejects.toThrow(/key "k2", which is not in the keyring/);
  });
});

describe('CpuPool clip scoring', () => {
  it('scores clips in a thread, taking over the signal buffers', async () => {
    const frames = 300;
    const motion = Float32Array.from({ length: frames }, (_, i) => (i >= 150 && i < 220 ? 25 : 2));
    const sharpness = new Float32Array(frames).fill(50);
    const dhash = Uint8Array.from({ length: frames * 8 }, (_, k) => (Math.floor(k / 80) * 37 + k) & 0xff);
    const clips = await pool.clipCandidates(
      { fps: 10, durationSeconds: 30, motion, sharpness, dhash, cutFrames: [50, 100, 150, 220, 260], loudness: null },
      { clipCount: 2, minClipSeconds: 4, maxClipSeconds: 8 },
    );
    expect(clips[0]).toMatchObject({ startSeconds: 15, endSeconds: 22 });
    expect(motion.byteLength).toBe(0);
  });
});

describe('CpuPool frame tasks', () => {
  it('moves a batch into a thread and back, bytes unchanged, with the same metrics as measured on the spot', async () => {
    const width = 16;
    const height = 8;
    const count = 3;
    const frames = Uint8Array.from({ length: width * height * 3 * count }, (_, k) => (k * 7 + (k >> 5)) & 0xff);
    const sent = frames.slice();
    const onTheSpot = batchMetrics({ width, height, count, frames: sent.slice() });
    const { value, frames: back } = await pool.analysisFrames({ width, height, count, frames });
    expect(frames.byteLength).toBe(0); // moved into the thread, not copied
    expect(back).toEqual(sent);
    expect(value.metrics).toEqual(onTheSpot);
    expect(value.profiles.length).toBeGreaterThan(0);
  });
});
