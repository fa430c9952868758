import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { bytesReply, jsonReply, type SimReply } from '../http-io.js';
import { oneSecondMp3 } from '../media-tools.js';
import type { EndpointDefinition } from './endpoint.js';

const SPEECH_PATH = /^\/v1\/text-to-speech\/([^/]+)(\/stream)?$/;
const WORDS_PER_SECOND = 2.5;
const MAX_SECONDS = 300;

function elevenLabsDetail(status: number, code: string, message: string): SimReply {
  return jsonReply(status, { detail: { status: code, message } });
}

/** FastAPI's validation answer (`HTTPValidationError` in their spec). */
function validationError(location: readonly (string | number)[], message: string, type: string): SimReply {
  return jsonReply(422, { detail: [{ loc: location, msg: message, type }] });
}

/**
 * `POST /v1/text-to-speech/{voice_id}` (and `/stream`). The audio is a real MP3: one second of
 * tone per ~2.5 words of text, made by concatenating frames that ffmpeg produced once.
 */
export const elevenLabsSpeech: EndpointDefinition = {
  id: 'elevenlabs.text-to-speech',
  methods: ['POST'],
  bodyLimitBytes: 1024 * 1024,
  match(pathname) {
    const match = SPEECH_PATH.exec(pathname);
    if (!match) return undefined;
    return { voice_id: decodeURIComponent(match[1] ?? ''), ...(match[2] ? { stream: 'true' } : {}) };
  },
  checkAuth(req, _url, settings) {
    const key = req.headers['xi-api-key'];
    if (!key) return elevenLabsDetail(401, 'needs_authorization', 'Neither authorization header nor xi-api-key received, please provide one.');
    if (key !== settings.apiKeys.elevenlabs) return elevenLabsDetail(401, 'invalid_api_key', 'Invalid API key');
    return undefined;
  },
  rateLimited: () => elevenLabsDetail(429, 'too_many_concurrent_requests', 'Too many concurrent requests for your subscription. Please retry later.'),
  serverError: (status) => elevenLabsDetail(status, 'internal_server_error', 'An internal error occurred while generating audio.'),
  tooLarge: (limitBytes) => elevenLabsDetail(413, 'payload_too_large', `request body exceeds ${limitBytes} bytes`),
  malformed: () => bytesReply(200, Buffer.from('<html><body>upstream proxy error</body></html>'), 'audio/mpeg'),
  async handle({ body, url, params, settings }) {
    let request: { text?: unknown; model_id?: unknown };
    try {
      request = JSON.parse(body.toString('utf8')) as typeof request;
    } catch {
      return validationError(['body'], 'JSON decode error', 'json_invalid');
    }
    if (typeof request !== 'object' || request === null) return validationError(['body'], 'Input should be a valid dictionary', 'dict_type');
    if (request.text === undefined) return validationError(['body', 'text'], 'Field required', 'missing');
    if (typeof request.text !== 'string') return validationError(['body', 'text'], 'Input should be a valid string', 'string_type');
    if (!request.text.trim()) return elevenLabsDetail(400, 'empty_text', 'The text must not be empty.');
    const format = url.searchParams.get('output_format') ?? 'mp3_44100_128';
    if (!format.startsWith('mp3_')) return validationError(['query', 'output_format'], 'The simulator produces only mp3_* output formats', 'enum');
    const voice = params.voice_id ?? '';
    if (!/^[A-Za-z0-9]{4,40}$/.test(voice)) return elevenLabsDetail(404, 'voice_not_found', `A voice with the voice_id ${voice} was not found.`);
    const seconds = Math.min(MAX_SECONDS, Math.max(1, Math.ceil(request.text.split(/\s+/).filter(Boolean).length / WORDS_PER_SECOND)));
    const second = await oneSecondMp3(settings.ffmpegPath);
    const headers = { 'content-type': 'audio/mpeg', 'request-id': randomUUID(), 'history-item-id': randomUUID().replace(/-/g, '').slice(0, 20) };
    if (params.stream) {
      // The streaming variant sends chunked audio, one second at a time, without a length.
      return { status: 200, headers, body: Readable.from(Array.from({ length: seconds }, () => second)) };
    }
    return { status: 200, headers, body: Buffer.concat(Array.from({ length: seconds }, () => second)) };
  },
};
