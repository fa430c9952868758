/**
 * The CLI's settings. Every command talks to the producer API, `keys` included, so the CLI needs
 * nothing but a URL and a key. Defaults match a local `npm start`.
 */

/** The key a non-production producer accepts when no API_KEYS are set (the server's DEV_API_KEY). */
export const DEV_API_KEY = 'dev-key-clipline';

/** @defaultValue of CLIPLINE_URL */
export const DEFAULT_API_URL = 'http://127.0.0.1:3000';

export interface CliSettings {
  /** `CLIPLINE_URL`: the producer API. @defaultValue {@link DEFAULT_API_URL} */
  readonly apiUrl: string;
  /** `CLIPLINE_API_KEY`. @defaultValue {@link DEV_API_KEY}, which only a non-production server accepts */
  readonly apiKey: string;
  /** False when `NO_COLOR` is set (to anything but the empty string). */
  readonly color: boolean;
}

/** The environment is wrong (exit code 2); the message names every bad variable. */
export class CliConfigError extends Error {
  override name = 'CliConfigError';
}

/** What is wrong with CLIPLINE_URL, or undefined. Credentials in it are never echoed: the key goes in CLIPLINE_API_KEY. */
function urlProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    // Shown as it is unless it may hold a password (`user:secret@…` that does not parse).
    return `CLIPLINE_URL${value.includes('@') ? '' : `=${JSON.stringify(value)}`}: expected an http:// or https:// URL`;
  }
  if (url.username || url.password) return 'CLIPLINE_URL: must not carry a user or password (the API key goes in CLIPLINE_API_KEY)';
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `CLIPLINE_URL=${JSON.stringify(value)}: expected an http:// or https:// URL`;
  if (url.search || url.hash) return `CLIPLINE_URL=${JSON.stringify(value)}: must not carry a query or fragment`;
  return undefined;
}

/** Throws a {@link CliConfigError} naming every bad variable; an empty variable counts as unset. */
export function loadCliSettings(source: Record<string, string | undefined>): CliSettings {
  const read = (name: string) => (source[name] === '' ? undefined : source[name]);
  const apiUrl = read('CLIPLINE_URL') ?? DEFAULT_API_URL;
  const apiKey = read('CLIPLINE_API_KEY') ?? DEV_API_KEY;
  const problems: string[] = [];
  const badUrl = urlProblem(apiUrl);
  if (badUrl) problems.push(badUrl);
  // What an Authorization header can carry; the key itself is never echoed.
  if (!/^[\x21-\x7e]{1,512}$/.test(apiKey)) problems.push('CLIPLINE_API_KEY: expected 1-512 visible ASCII characters');
  if (problems.length > 0) throw new CliConfigError(`invalid environment:\n${problems.map((line) => `  ${line}`).join('\n')}`);
  return Object.freeze({ apiUrl, apiKey, color: read('NO_COLOR') === undefined });
}
