import type { IncomingMessage } from 'node:http';
import type { SimEndpoint } from '../fault-config.js';
import type { SimReply } from '../http-io.js';
import type { SeededRandom } from '../seeded-random.js';

export type SimProvider = 'youtube' | 'openai' | 'stability' | 'elevenlabs';

/**
 * Text that makes a simulated model decline a prompt holding it, as real ones decline what they
 * will not write or draw: OpenAI's chat answers a refusal, Stability a 400 `invalid_prompts`.
 */
export const REFUSAL_MARKER = '[sim:decline]';

/** What the endpoints share: keys, tools and data revisions. */
export interface EndpointSettings {
  /** The key each provider accepts. */
  apiKeys: Readonly<Record<SimProvider, string>>;
  /** Base of every generated value. */
  seed: number;
  ffmpegPath: string;
  /** Directory served under /media, if any. */
  mediaDir: string | undefined;
  youtubeRevision: number;
}

export interface EndpointRequest {
  req: IncomingMessage;
  url: URL;
  params: Readonly<Record<string, string>>;
  /** The request body, read in full (empty for GET). */
  body: Buffer;
  /** Seeded from the simulator seed and the request's content: the same request gets the same answer. */
  random: SeededRandom;
  settings: EndpointSettings;
}

/** One provider operation the simulator serves, with that provider's own error shapes. */
export interface EndpointDefinition {
  id: SimEndpoint;
  methods: readonly string[];
  /** Largest request body accepted, in bytes. */
  bodyLimitBytes: number;
  /** Path parameters when the path belongs to this endpoint, else undefined. */
  match(pathname: string): Record<string, string> | undefined;
  /** The provider's answer to missing or wrong credentials, or undefined when they are fine. */
  checkAuth(req: IncomingMessage, url: URL, settings: EndpointSettings): SimReply | undefined;
  rateLimited(retryAfterSeconds: number, reason: 'rate' | 'quota'): SimReply;
  serverError(status: number): SimReply;
  tooLarge(limitBytes: number, receivedBytes: number): SimReply;
  /** A 200 whose body breaks the provider's contract. */
  malformed(): SimReply;
  handle(request: EndpointRequest): Promise<SimReply>;
}

/** Matches `pattern` (with `{name}` placeholders, one path segment each) against a path. */
export function matchPath(pattern: string, pathname: string): Record<string, string> | undefined {
  const names: string[] = [];
  const source = pattern.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{(\w+)\}/g, (_whole, name: string) => {
    names.push(name);
    return '([^/]+)';
  });
  const match = new RegExp(`^${source}$`).exec(pathname);
  if (!match) return undefined;
  return Object.fromEntries(names.map((name, index) => [name, decodeURIComponent(match[index + 1] ?? '')]));
}

export function bearerToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (!header) return undefined;
  const match = /^Bearer\s+(.+)$/i.exec(header);
  return (match?.[1] ?? header).trim();
}
