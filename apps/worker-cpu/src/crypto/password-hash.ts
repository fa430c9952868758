/**
 * Password hashing with scrypt, a memory-hard KDF. Synchronous on purpose: these functions run
 * inside pool threads (see `pool-tasks.ts`), so the pool size bounds how many hashes (and how
 * much memory) run at once, and no event loop waits on them.
 *
 * Encoded form: `$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt>$<hash>`, salt and hash in unpadded
 * base64, so a hash carries its own parameters and old hashes still verify after they change.
 */
import { randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';

export interface ScryptParams {
  /** log2 of the CPU/memory cost N. @defaultValue 15 (N = 32768) */
  logN: number;
  /** Block size. @defaultValue 8 */
  r: number;
  /** Parallelisation. @defaultValue 1 */
  p: number;
}

/** 128 · N · r bytes = 32 MiB per hash, about 0.1 s on a current core. */
export const DEFAULT_SCRYPT_PARAMS: Readonly<ScryptParams> = Object.freeze({ logN: 15, r: 8, p: 1 });

const SALT_BYTES = 16;
const KEY_BYTES = 32;
/** Passwords longer than this are refused rather than hashed: a megabyte password is an attack. */
export const MAX_PASSWORD_LENGTH = 1024;
const LIMITS = { logN: [10, 20], r: [1, 32], p: [1, 16] } as const;
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
  return params;
}

function derive(password: string, salt: Buffer, params: ScryptParams, length: number): Buffer {
  const N = 2 ** params.logN;
  return scryptSync(password, salt, length, { N, r: params.r, p: params.p, maxmem: 256 * N * params.r * params.p });
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

/** True when a stored hash was made with weaker parameters than `params` and should be redone at next login. */
export function passwordHashNeedsUpgrade(encoded: string, params: ScryptParams = DEFAULT_SCRYPT_PARAMS): boolean {
  const current = parsePasswordHash(encoded).params;
  return current.logN < params.logN || current.r < params.r || current.p < params.p;
}

function unpadded(bytes: Buffer): string {
  return bytes.toString('base64').replace(/=+$/, '');
}
