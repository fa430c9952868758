/**
 * The shared fixtures next to the repository (`../shared/fixtures`). Locally a suite that needs
 * them is skipped when they are missing, with a note saying so; under `CI=true` it fails with a
 * message naming the missing path, so a CI machine without them cannot pass by skipping.
 * `CLIPLINE_FIXTURES_DIR` points elsewhere (to check this behaviour with a missing folder).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from '@jest/globals';

const ROOT = path.resolve(import.meta.dirname ?? '.', '../..');
export const FIXTURES_DIR = process.env.CLIPLINE_FIXTURES_DIR ?? path.resolve(ROOT, '../shared/fixtures');

const inCi = () => ['true', '1'].includes((process.env.CI ?? '').toLowerCase());

export interface Fixtures {
  /** Absolute paths of the requested files that exist. */
  files: string[];
  /** Absolute paths of the requested files that do not. */
  missing: string[];
  /** Why the suite cannot run as written, when something is missing. */
  problem: string | undefined;
}

/** The files `names` of `../shared/fixtures/<folder>`. */
export function fixtures(folder: 'video' | 'apis', names: readonly string[]): Fixtures {
  const dir = path.join(FIXTURES_DIR, folder);
  const all = names.map((name) => path.join(dir, name));
  const files = all.filter((file) => existsSync(file));
  const missing = all.filter((file) => !existsSync(file));
  const problem = missing.length
    ? existsSync(dir)
      ? `fixtures missing in ${dir}: ${missing.map((file) => path.basename(file)).join(', ')}`
      : `fixtures folder ${dir} is missing`
    : undefined;
  return { files, missing, problem };
}

/**
 * `describe` for a suite that needs every file of `needed`. When one is missing: under CI a
 * suite with one failing test naming the path; otherwise a skipped suite whose name says why.
 */
export function describeWithFixtures(needed: Fixtures, name: string, body: () => void): void {
  if (!needed.problem) {
    describe(name, body);
  } else if (inCi()) {
    describe(name, () => {
      it('has its fixtures', () => {
        throw new Error(`${needed.problem} (CI=true: suites that need ../shared/fixtures must not be skipped)`);
      });
    });
  } else {
    console.warn(`skipping "${name}": ${needed.problem} (under CI=true this fails)`);
    describe.skip(`${name} (skipped: ${needed.problem})`, body);
  }
}

/** `it` for one test that needs every file of `needed`, with the same rule as {@link describeWithFixtures}. */
export function itWithFixtures(needed: Fixtures, name: string, fn: () => Promise<unknown>, timeoutMs?: number): void {
  if (!needed.problem) {
    it(name, fn, timeoutMs);
  } else if (inCi()) {
    it(name, () => {
      throw new Error(`${needed.problem} (CI=true: tests that need ../shared/fixtures must not be skipped)`);
    });
  } else {
    console.warn(`skipping "${name}": ${needed.problem} (under CI=true this fails)`);
    it.skip(`${name} (skipped: ${needed.problem})`, fn);
  }
}

/**
 * For a test that uses the fixtures when present on top of generated media: true when they are
 * there; under CI a missing one throws (naming the path), locally it is noted and false.
 */
export function fixturesPresent(needed: Fixtures, what: string): boolean {
  if (!needed.problem) return true;
  if (inCi()) throw new Error(`${needed.problem} (CI=true: ${what} must run with them)`);
  console.warn(`${what} runs without them: ${needed.problem} (under CI=true this fails)`);
  return false;
}
