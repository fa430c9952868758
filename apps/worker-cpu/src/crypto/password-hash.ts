/**
 * Password hashing with scrypt, a memory-hard KDF. Synchronous on purpose: these functions run
 * inside pool threads (see `pool-tasks.ts`), so the pool size bounds how many hashes (and how
 * much memory) run at once, and no event loop waits on them.
 *
 * Encoded form: `$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt>$<hash>`, salt and hash in unpadded
 * base64, so a hash carries its own parameters and old hashes still verify after they change.
 *
 * Upgrading: `verifyPassword` answers only "does it match". Whether a stored hash is weaker than
 * today's parameters is read from the hash alone by `passwordHashNeedsUpgrade`, which is cheap
 * (no key derivation) and needs no pool thread. A login should ask it only after a successful
 * match, since that is the one moment the clear password is at hand to hash again.
 */
import { randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';

export interface ScryptParams {
  /** log2 of the CPU/memory cost N. @defaultValue 17 (N = 131072) */
  logN: number;
  /** Block size. @defaultValue 8 */
  r: number;
  /** Parallelisation. @defaultValue 1 */
  p: number;
}

/**
 * OWASP's minimum for scrypt (N = 2^17, r = 8, p = 1): 128 · N · r bytes = 128 MiB per hash.
 * One hash takes 0.7 to 1 s of one core on the 2-core development machine, depending on load
 * (0.16 s at the old N = 2^15), so each pool thread registers one or two users a second.
 *
 * Memory: each pool thread runs one task at a time, so the peak is CPU_POOL_THREADS × 128 MiB.
 * CPU_POOL_THREADS defaults to `os.availableParallelism()`: 256 MiB on a 2-core machine, 1 GiB on
 * 8 cores, 4 GiB on 32. Size the worker-cpu container for that, or set CPU_POOL_THREADS lower.
 * The default used to be N = 2^15 (32 MiB); hashes made with it still verify and report that
 * they need an upgrade.
 */
export const DEFAULT_SCRYPT_PARAMS: Readonly<ScryptParams> = Object.freeze({ logN: 17, r: 8, p: 1 });

const SALT_BYTES = 16;
const KEY_BYTES = 32;
/** Passwords longer than this are refused rather than hashed: a megabyte password is an attack. */
export const MAX_PASSWORD_LENGTH = 1024;
const LIMITS = { logN: [10, 20], r: [1, 32], p: [1, 16] } as const;
/**
 * The most memory one derivation may take (just over 256 MiB): room for one more doubling of N
 * after the default and no more, so a stored hash with absurd parameters (ln=20,r=32 would be
 * 4 GiB) cannot make a pool thread allocate gigabytes.
 */
export const MAX_SCRYPT_MEMORY_BYTES = scryptMemoryBytes({ logN: 18, r: 8, p: 1 });
const ENCODED = /^\$scrypt\$ln=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;

export class PasswordHashFormatError extends Error {
  override name = 'PasswordHashFormatError';
}

function checkPassword(password: unknown): string {
  if (typeof password !== 'string' || password.length === 0) throw new TypeError('password must be a non-empty string');
  if (password.length > MAX_PASSWORD_LENGTH) throw new RangeError(`password is longer than ${MAX_PASSWORD_LENGTH} characters`);
  // The same password typed on another keyboard or OS may arrive in another Unicode form.
  return password.normalize('NFKC');
}

function checkParams(params: ScryptParams): ScryptParams {
  for (const name of ['logN', 'r', 'p'] as const) {
    const [low, high] = LIMITS[name];
    const value = params[name];
    if (!Number.isInteger(value) || value < low || value > high) throw new RangeError(`scrypt ${name} must be an integer in ${low}..${high}, got ${value}`);
  }
  const bytes = scryptMemoryBytes(params);
  if (bytes > MAX_SCRYPT_MEMORY_BYTES) {
    throw new RangeError(
      `scrypt ln=${params.logN},r=${params.r},p=${params.p} needs ${mebibytes(bytes)} MiB, more than the ${mebibytes(MAX_SCRYPT_MEMORY_BYTES)} MiB limit`,
    );
  }
  return params;
}

/**
 * Bytes OpenSSL allocates for one derivation: the V array, 128 · r · (N + 2), and the B array,
 * 128 · r · p. This is the least `maxmem` it accepts (one byte less is refused), so it is passed
 * as `maxmem` exactly; the two extra blocks of V and all of B are the headroom over 128 · N · r.
 */
export function scryptMemoryBytes(params: ScryptParams): number {
  return 128 * params.r * (2 ** params.logN + 2 + params.p);
}

function mebibytes(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(1).replace(/\.0$/, '');
}

function derive(password: string, salt: Buffer, params: ScryptParams, length: number): Buffer {
  return scryptSync(password, salt, length, { N: 2 ** params.logN, r: params.r, p: params.p, maxmem: scryptMemoryBytes(params) });
}

export function hashPassword(password: string, params: ScryptParams = DEFAULT_SCRYPT_PARAMS): string {
  const normalised = checkPassword(password);
  checkParams(params);
  const salt = randomBytes(SALT_BYTES);
  const key = derive(normalised, salt, params, KEY_BYTES);
  return `$scrypt$ln=${params.logN},r=${params.r},p=${params.p}$${unpadded(salt)}$${unpadded(key)}`;
}

export interface ParsedPasswordHash {
  params: ScryptParams;
  salt: Buffer;
  key: Buffer;
}

export function parsePasswordHash(encoded: string): ParsedPasswordHash {
  const match = typeof encoded === 'string' ? ENCODED.exec(encoded) : null;
  if (!match) throw new PasswordHashFormatError('not an scrypt password hash ($scrypt$ln=…,r=…,p=…$salt$hash expected)');
  const params = { logN: Number(match[1]), r: Number(match[2]), p: Number(match[3]) };
  try {
    checkParams(params);
  } catch (error) {
    throw new PasswordHashFormatError(`password hash has unusable parameters: ${(error as Error).message}`);
  }
  const salt = Buffer.from(match[4]!, 'base64');
  const key = Buffer.from(match[5]!, 'base64');
  if (salt.length < 8 || key.length < 16) throw new PasswordHashFormatError('password hash has a salt or key too short to be genuine');
  return { params, salt, key };
}

/** True when `password` matches; compares in constant time. A malformed hash throws, it is not a mismatch. */
export function verifyPassword(password: string, encoded: string): boolean {
  const parsed = parsePasswordHash(encoded);
  const normalised = checkPassword(password);
  return timingSafeEqual(derive(normalised, parsed.salt, parsed.params, parsed.key.length), parsed.key);
}

/**
 * True when a stored hash was made with weaker parameters than `params` (or a shorter salt or key
 * than `hashPassword` makes today) and should be redone after the next successful verification.
 */
export function passwordHashNeedsUpgrade(encoded: string, params: ScryptParams = DEFAULT_SCRYPT_PARAMS): boolean {
  const stored = parsePasswordHash(encoded);
  const weaker = stored.params.logN < params.logN || stored.params.r < params.r || stored.params.p < params.p;
  return weaker || stored.salt.length < SALT_BYTES || stored.key.length < KEY_BYTES;
}

function unpadded(bytes: Buffer): string {
  return bytes.toString('base64').replace(/=+$/, '');
}
