/**
 * Sealing secrets with named, rotatable AES-256-GCM keys. A subpath of its own
 * (`@clipline/shared/crypto`) so pool threads load these few functions, not the whole package.
 */
export * from './secret-box.js';
export * from './keyring.js';
