import type { IncomingMessage } from 'node:http';
import { jsonReply, type SimReply } from '../http-io.js';
import { bearerToken, type EndpointSettings } from './endpoint.js';

/** OpenAI's error envelope (`ErrorResponse` in their spec). */
export function openAiError(
  status: number,
  message: string,
  type: string,
  code: string | null = null,
  param: string | null = null,
  headers: Record<string, string> = {},
): SimReply {
  return jsonReply(status, { error: { message, type, param, code } }, headers);
}

export function checkOpenAiKey(req: IncomingMessage, settings: EndpointSettings): SimReply | undefined {
  const key = bearerToken(req);
  if (!key) {
    return openAiError(
      401,
      "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
      'invalid_request_error',
    );
  }
  if (key !== settings.apiKeys.openai) {
    const shown = key.length > 8 ? `${key.slice(0, 3)}*****${key.slice(-4)}` : '*****';
    return openAiError(
      401,
      `Incorrect API key provided: ${shown}. You can find your API key at https://platform.openai.com/account/api-keys.`,
      'invalid_request_error',
      'invalid_api_key',
    );
  }
  return undefined;
}

export const openAiFaults = {
  rateLimited: (_retryAfterSeconds: number, reason: 'rate' | 'quota') =>
    reason === 'quota'
      ? openAiError(429, 'You exceeded your current quota, please check your plan and billing details.', 'insufficient_quota', 'insufficient_quota')
      : openAiError(429, 'Rate limit reached for requests. Please try again later.', 'requests', 'rate_limit_exceeded'),
  serverError: (status: number) =>
    status === 503
      ? openAiError(503, 'The server is overloaded or not ready yet.', 'server_error')
      : openAiError(status, 'The server had an error while processing your request. Sorry about that!', 'server_error'),
  tooLarge: (limitBytes: number, receivedBytes: number) =>
    openAiError(413, `Maximum content size limit (${limitBytes}) exceeded (${receivedBytes} bytes read)`, 'invalid_request_error'),
};

/** Words are a fair stand-in for tokens in usage numbers. */
export function tokenCount(text: string): number {
  return text.split(/\s+/).filter(Boolean).length;
}
