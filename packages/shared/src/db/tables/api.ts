import type { Timestamp } from './core.js';

/**
 * API keys are stored as a SHA-256 digest of the whole key: the keys are 190 random bits, so a
 * fast digest is as safe as a slow password hash here and keeps verification cheap per request.
 * `prefix` is the public part (`cl_<publicId>`) the key is looked up by and shown as.
 */
export interface ApiKeysTable {
  id: string;
  name: string;
  prefix: string;
  key_hash: Buffer;
  created_at: Timestamp;
  revoked_at: Date | null;
  last_used_at: Date | null;
}

export interface UsersTable {
  id: string;
  email: string;
  name: string | null;
  /** scrypt hash made in the CPU pool; null until registration has finished. */
  password_hash: string | null;
  status: 'pending' | 'active' | 'failed';
  failure: string | null;
  created_at: Timestamp;
  activated_at: Date | null;
  welcomed_at: Date | null;
}

/** Tables of the public API (API keys, users, …). */
export interface ApiTables {
  api_keys: ApiKeysTable;
  users: UsersTable;
}
