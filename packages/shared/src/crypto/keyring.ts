import { checkKeyring, KEY_ID_PATTERN, type Keyring } from './secret-box.js';

/**
 * Reads a keyring from its configuration text, `id:base64key,id:base64key,…`: the first key is
 * the current one, the others only open older tokens. Rotating a key = putting a new one first.
 */
export function parseKeyring(text: string): Keyring {
  const entries = text
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
  if (entries.length === 0) throw new RangeError('keyring is empty: expected id:base64key[,id:base64key…]');
  // Without a prototype: an id like `constructor` or `__proto__` is a key's name like any other.
  const keys: Record<string, Uint8Array> = Object.create(null);
  for (const entry of entries) {
    const colon = entry.indexOf(':');
    const id = colon > 0 ? entry.slice(0, colon) : '';
    if (!KEY_ID_PATTERN.test(id)) throw new RangeError(`keyring entry "${entry.slice(0, 12)}…" needs an id of 1-32 letters, digits, "_" or "-" before ":"`);
    if (Object.hasOwn(keys, id)) throw new RangeError(`keyring names key "${id}" twice`);
    const key = Buffer.from(entry.slice(colon + 1), 'base64');
    if (key.length !== 32) throw new RangeError(`key "${id}" decodes to ${key.length} bytes; AES-256 needs 32 (openssl rand -base64 32)`);
    keys[id] = new Uint8Array(key);
  }
  return checkKeyring({ currentKeyId: entries[0]!.slice(0, entries[0]!.indexOf(':')), keys });
}
