/**
 * Secrets at rest with AES-256-GCM under named keys, so keys can rotate: every token names the
 * key that sealed it, old keys stay in the keyring to open old tokens, and new tokens always use
 * the current key. Runs in pool threads (see `pool-tasks.ts`).
 *
 * Token: `v1.<keyId>.<iv>.<ciphertext>.<tag>`, binary parts in base64url.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

export interface Keyring {
  /** Id of the key new tokens are sealed with. */
  currentKeyId: string;
  /** Every key that may still open tokens, 32 bytes each, by id. */
  keys: Readonly<Record<string, Uint8Array>>;
}

export const KEY_ID_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;
const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

export class SecretDecryptionError extends Error {
  override name = 'SecretDecryptionError';
}

/** The key of `id`, an own entry only: ids like `constructor` or `__proto__` name no key. */
function keyOf(keyring: Keyring, id: string): Uint8Array | undefined {
  const keys = keyring?.keys;
  return keys && Object.hasOwn(keys, id) && keys[id] instanceof Uint8Array ? keys[id] : undefined;
}

/** Checks a keyring once, with a message naming what is wrong. */
export function checkKeyring(keyring: Keyring): Keyring {
  if (!keyring || typeof keyring !== 'object' || !keyring.keys) throw new TypeError('keyring must be { currentKeyId, keys }');
  for (const [id, key] of Object.entries(keyring.keys)) {
    if (!KEY_ID_PATTERN.test(id)) throw new RangeError(`key id "${id}" must be 1-32 letters, digits, "_" or "-"`);
    if (!(key instanceof Uint8Array) || key.length !== 32) throw new RangeError(`key "${id}" must be 32 bytes (AES-256), got ${key?.length ?? 0}`);
  }
  if (!keyOf(keyring, keyring.currentKeyId)) throw new RangeError(`current key "${keyring.currentKeyId}" is not in the keyring`);
  return keyring;
}

/** Seals `plaintext` with the current key. `associatedData` binds the token to its context (e.g. a user id): opening needs the same. */
export function encryptSecret(plaintext: string, keyring: Keyring, associatedData = ''): string {
  if (typeof plaintext !== 'string') throw new TypeError('plaintext must be a string');
  checkKeyring(keyring);
  const keyId = keyring.currentKeyId;
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', keyOf(keyring, keyId)!, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(additionalData(keyId, associatedData));
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return [VERSION, keyId, iv.toString('base64url'), ciphertext.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.');
}

/** Id of the key that sealed a token. */
export function secretKeyId(token: string): string {
  return parseToken(token).keyId;
}

/** Opens a token with the key it names; a wrong key, context or a tampered token fails, never returns garbage. */
export function decryptSecret(token: string, keyring: Keyring, associatedData = ''): string {
  const parsed = parseToken(token);
  const key = keyOf(keyring, parsed.keyId);
  if (!key) throw new SecretDecryptionError(`token was sealed with key "${parsed.keyId}", which is not in the keyring`);
  const decipher = createDecipheriv('aes-256-gcm', key, parsed.iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(additionalData(parsed.keyId, associatedData));
  decipher.setAuthTag(parsed.tag);
  try {
    return Buffer.concat([decipher.update(parsed.ciphertext), decipher.final()]).toString('utf8');
  } catch {
    throw new SecretDecryptionError('token does not authenticate: it was altered, or belongs to another context');
  }
}

/** Re-seals a token under the current key (key rotation); a token already under it comes back unchanged. */
export function reencryptSecret(token: string, keyring: Keyring, associatedData = ''): string {
  if (parseToken(token).keyId === keyring.currentKeyId) {
    decryptSecret(token, keyring, associatedData);
    return token;
  }
  return encryptSecret(decryptSecret(token, keyring, associatedData), keyring, associatedData);
}

function parseToken(token: string) {
  const parts = typeof token === 'string' ? token.split('.') : [];
  if (parts.length !== 5 || parts[0] !== VERSION) throw new SecretDecryptionError(`not a sealed secret (expected ${VERSION}.<keyId>.<iv>.<ciphertext>.<tag>)`);
  const [, keyId, iv, ciphertext, tag] = parts as [string, string, string, string, string];
  if (!KEY_ID_PATTERN.test(keyId)) throw new SecretDecryptionError(`sealed secret names an invalid key id "${keyId.slice(0, 40)}"`);
  const parsed = { keyId, iv: Buffer.from(iv, 'base64url'), ciphertext: Buffer.from(ciphertext, 'base64url'), tag: Buffer.from(tag, 'base64url') };
  if (parsed.iv.length !== IV_BYTES || parsed.tag.length !== TAG_BYTES) throw new SecretDecryptionError('sealed secret has a malformed iv or tag');
  return parsed;
}

/** The key id is authenticated too: a token cannot be relabelled to another key. */
function additionalData(keyId: string, associatedData: string): Buffer {
  return Buffer.from(`${VERSION}.${keyId}.${associatedData}`, 'utf8');
}
