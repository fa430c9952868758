/**
 * Choosing clips: highlight scoring and speech boundaries. Pure code with no I/O, importable on
 * its own (`@clipline/shared/clips`) by worker threads that must not load the rest of the package.
 */
export * from './highlights.js';
export * from './speech.js';
