import { randomBytes } from 'node:crypto';
import { parseKeyring } from '@clipline/shared/crypto';
import {
  DEFAULT_SCRYPT_PARAMS,
  hashPassword,
  MAX_SCRYPT_MEMORY_BYTES,
  parsePasswordHash,
  PasswordHashFormatError,
  passwordHashNeedsUpgrade,
  scryptMemoryBytes,
  verifyPassword,
} from '../src/crypto/password-hash.js';
import { decryptSecret, encryptSecret, reencryptSecret, SecretDecryptionError, secretKeyId, type Keyring } from '@clipline/shared/crypto';

/** Cheap parameters keep most tests fast; the first test uses the defaults. */
const FAST = { logN: 10, r: 8, p: 1 };

/**
 * A hash of 'correct horse battery staple' as stored before the upgrade to N = 2^17: made by
 * `hashPassword` with its old defaults (N = 2^15, r = 8, p = 1), and checked against a bare
 * `crypto.scryptSync` call with those parameters, so it does not depend on this module.
 */
const STORED_BEFORE_UPGRADE = '$scrypt$ln=15,r=8,p=1$dxuO0ZhNB7fGVsYtchL+uA$XbNAqOp+Mp59eQIT8HGtImVV67J8qpqL0/faqI8Vqqs';

describe('password hashing (scrypt)', () => {
  it('hashes at OWASP strength by default (N = 131072, r = 8, p = 1), verifies the right password and rejects a wrong one', () => {
    const encoded = hashPassword('correct horse battery staple');
    expect(encoded).toMatch(/^\$scrypt\$ln=17,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    const { params } = parsePasswordHash(encoded);
    expect(params).toEqual(DEFAULT_SCRYPT_PARAMS);
    expect(2 ** params.logN).toBe(131_072);
    expect(verifyPassword('correct horse battery staple', encoded)).toBe(true);
    expect(verifyPassword('correct horse battery stapl', encoded)).toBe(false);
    expect(passwordHashNeedsUpgrade(encoded)).toBe(false);
  });

  it('still verifies a hash stored with the old parameters (N = 32768), and says it needs an upgrade', () => {
    expect(parsePasswordHash(STORED_BEFORE_UPGRADE).params).toEqual({ logN: 15, r: 8, p: 1 });
    expect(verifyPassword('correct horse battery staple', STORED_BEFORE_UPGRADE)).toBe(true);
    expect(verifyPassword('Correct horse battery staple', STORED_BEFORE_UPGRADE)).toBe(false);
    expect(passwordHashNeedsUpgrade(STORED_BEFORE_UPGRADE)).toBe(true);
  });

  it('passes scrypt exactly the memory it needs: 128 MiB (plus three blocks) for the defaults', () => {
    expect(scryptMemoryBytes(DEFAULT_SCRYPT_PARAMS)).toBe(128 * 2 ** 20 + 3 * 1024);
    expect(scryptMemoryBytes({ logN: 15, r: 8, p: 1 })).toBe(32 * 2 ** 20 + 3 * 1024);
  });

  it('refuses parameters that need more memory than one more doubling of N, before deriving anything', () => {
    expect(MAX_SCRYPT_MEMORY_BYTES).toBe(scryptMemoryBytes({ logN: 18, r: 8, p: 1 }));
    expect(() => hashPassword('pw', { logN: 19, r: 8, p: 1 })).toThrow(/needs 512 MiB, more than the 256 MiB limit/);
    const greedy = '$scrypt$ln=20,r=32,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g';
    expect(() => verifyPassword('pw', greedy)).toThrow(PasswordHashFormatError);
    expect(() => verifyPassword('pw', greedy)).toThrow(/needs 4096 MiB/);
  });

  it('salts every hash', () => {
    expect(hashPassword('same', FAST)).not.toBe(hashPassword('same', FAST));
  });

  it('treats the Unicode forms of one password as the same password', () => {
    const encoded = hashPassword('caf\u00e9', FAST);
    expect(verifyPassword('cafe\u0301', encoded)).toBe(true);
  });

  it('verifies hashes made with other parameters and says when they need an upgrade', () => {
    const weak = hashPassword('pw', FAST);
    expect(verifyPassword('pw', weak)).toBe(true);
    expect(verifyPassword('pW', weak)).toBe(false);
    expect(passwordHashNeedsUpgrade(weak)).toBe(true);
    expect(passwordHashNeedsUpgrade(weak, FAST)).toBe(false);
  });

  it('refuses malformed hashes, absurd parameters and unusable passwords with clear errors', () => {
    expect(() => verifyPassword('pw', 'plain-text')).toThrow(PasswordHashFormatError);
    expect(() => verifyPassword('pw', '$scrypt$ln=40,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2g')).toThrow(/logN must be an integer in 10..20/);
    expect(() => hashPassword('', FAST)).toThrow(/non-empty string/);
    expect(() => hashPassword('x'.repeat(1025), FAST)).toThrow(/longer than 1024/);
    expect(() => hashPassword('pw', { logN: 9, r: 8, p: 1 })).toThrow(/logN/);
  });
});

describe('secrets at rest (AES-256-GCM with key ids)', () => {
  const k1 = randomBytes(32);
  const k2 = randomBytes(32);
  const old: Keyring = { currentKeyId: 'k1', keys: { k1 } };
  const rotated: Keyring = { currentKeyId: 'k2', keys: { k1, k2 } };

  it('round-trips and names its key', () => {
    const token = encryptSecret('s3cret token ✓', old, 'user:42');
    expect(token).toMatch(/^v1\.k1\.[\w-]{16}\.[\w-]+\.[\w-]{22}$/);
    expect(secretKeyId(token)).toBe('k1');
    expect(decryptSecret(token, old, 'user:42')).toBe('s3cret token ✓');
  });

  it('never seals the same secret to the same token', () => {
    expect(encryptSecret('a', old)).not.toBe(encryptSecret('a', old));
  });

  it('refuses another context, a tampered token and a relabelled key id', () => {
    const token = encryptSecret('secret', rotated, 'user:1');
    expect(() => decryptSecret(token, rotated, 'user:2')).toThrow(SecretDecryptionError);
    const parts = token.split('.');
    const body = Buffer.from(parts[3]!, 'base64url');
    body[0] = body[0]! ^ 1;
    expect(() => decryptSecret([...parts.slice(0, 3), body.toString('base64url'), parts[4]].join('.'), rotated, 'user:1')).toThrow(/does not authenticate/);
    expect(() => decryptSecret(['v1', 'k1', ...parts.slice(2)].join('.'), rotated, 'user:1')).toThrow(/does not authenticate/);
  });

  it('rotates: opens an old token with its key and re-seals it under the current one', () => {
    const token = encryptSecret('api-key-123', old);
    const resealed = reencryptSecret(token, rotated);
    expect(secretKeyId(resealed)).toBe('k2');
    expect(decryptSecret(resealed, rotated)).toBe('api-key-123');
    expect(reencryptSecret(resealed, rotated)).toBe(resealed);
    expect(() => decryptSecret(resealed, old)).toThrow(/sealed with key "k2", which is not in the keyring/);
  });

  it('refuses a keyring whose current key is missing or of the wrong size', () => {
    expect(() => encryptSecret('x', { currentKeyId: 'k9', keys: { k1 } })).toThrow(/current key "k9" is not in the keyring/);
    expect(() => encryptSecret('x', { currentKeyId: 'k1', keys: { k1: randomBytes(16) } })).toThrow(/must be 32 bytes/);
    expect(() => decryptSecret('not-a-token', old)).toThrow(/not a sealed secret/);
  });
});

describe('parseKeyring', () => {
  it('takes the first key as current', () => {
    const text = `new:${randomBytes(32).toString('base64')}, old:${randomBytes(32).toString('base64')}`;
    const keyring = parseKeyring(text);
    expect(keyring.currentKeyId).toBe('new');
    expect(Object.keys(keyring.keys).sort()).toEqual(['new', 'old']);
  });

  it('names the problem of a bad entry', () => {
    expect(() => parseKeyring('')).toThrow(/keyring is empty/);
    expect(() => parseKeyring(`k1:${randomBytes(16).toString('base64')}`)).toThrow(/decodes to 16 bytes; AES-256 needs 32/);
    expect(() => parseKeyring(`k1:${randomBytes(32).toString('base64')},k1:${randomBytes(32).toString('base64')}`)).toThrow(/names key "k1" twice/);
    expect(() => parseKeyring(randomBytes(32).toString('base64'))).toThrow(/needs an id/);
  });

  it('takes ids that are names of object properties (constructor, __proto__) as any other, and opens nothing with them otherwise', () => {
    for (const id of ['constructor', '__proto__', 'toString']) {
      const keyring = parseKeyring(`${id}:${randomBytes(32).toString('base64')}`);
      expect([id, Object.keys(keyring.keys)]).toEqual([id, [id]]);
      // Through structured cloning, as the keyring reaches the pool's threads.
      const cloned = structuredClone(keyring);
      expect(decryptSecret(encryptSecret('s', cloned, 'ctx'), cloned, 'ctx')).toBe('s');
    }
    const plain = parseKeyring(`k1:${randomBytes(32).toString('base64')}`);
    const sealed = encryptSecret('s', plain).split('.');
    for (const id of ['constructor', 'toString', '__proto__']) {
      expect(() => decryptSecret([sealed[0], id, ...sealed.slice(2)].join('.'), plain)).toThrow(SecretDecryptionError);
    }
  });
});
