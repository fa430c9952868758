import { randomUUID } from 'node:crypto';
import { bytesReply, jsonReply, type SimReply } from '../http-io.js';
import { generatePng, type Palette } from '../png.js';
import { deriveSeed, SeededRandom } from '../seeded-random.js';
import { bearerToken, matchPath, REFUSAL_MARKER, type EndpointDefinition } from './endpoint.js';

/** Stability's error body (`Error` in their spec, which lists `status` as required). */
function stabilityError(status: number, name: string, message: string): SimReply {
  return jsonReply(status, { id: randomUUID().replace(/-/g, ''), name, message, status });
}

interface TextToImageRequest {
  text_prompts?: unknown;
  width?: unknown;
  height?: unknown;
  samples?: unknown;
  seed?: unknown;
}

function dimension(value: unknown, name: string): number | string {
  if (value === undefined) return 512;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 128 || value % 64 !== 0) {
    return `${name} must be an integer of at least 128 in increments of 64`;
  }
  return value;
}

const generated = new Map<string, Buffer>();

/** PNGs are cached by size and seed: the same request is answered from memory the second time. */
function pictureFor(width: number, height: number, seed: number): Buffer {
  const key = `${width}x${height}:${seed}`;
  let png = generated.get(key);
  if (!png) {
    const random = new SeededRandom(seed);
    const colour = () => [random.integer(20, 235), random.integer(20, 235), random.integer(20, 235)] as const;
    const palette: Palette = { from: colour(), to: colour(), bands: random.integer(1, 6) };
    png = generatePng(width, height, palette);
    if (generated.size >= 16) generated.delete(generated.keys().next().value as string);
    generated.set(key, png);
  }
  return png;
}

/**
 * `POST /v1/generation/{engine_id}/text-to-image`. Answers `{artifacts: [{base64, seed,
 * finishReason}]}` (what the API returns and its own code samples read, while the spec's schema
 * describes only the array), or the PNG itself with `Accept: image/png`.
 */
export const stabilityTextToImage: EndpointDefinition = {
  id: 'stability.text-to-image',
  methods: ['POST'],
  bodyLimitBytes: 1024 * 1024,
  match: (pathname) => matchPath('/v1/generation/{engine_id}/text-to-image', pathname),
  checkAuth(req, _url, settings) {
    const key = bearerToken(req);
    if (!key) return stabilityError(401, 'unauthorized', 'missing authorization header');
    if (key !== settings.apiKeys.stability) return stabilityError(401, 'unauthorized', 'authentication failed: invalid API key');
    return undefined;
  },
  rateLimited: () => stabilityError(429, 'rate_limit_exceeded', 'You have exceeded the rate limit of 150 requests within a 10 second period.'),
  serverError: (status) => stabilityError(status, 'internal_error', 'An unexpected server error occurred, please try again.'),
  tooLarge: (limitBytes) => stabilityError(413, 'payload_too_large', `request body exceeds ${limitBytes} bytes`),
  malformed: () => jsonReply(200, { artifacts: [{ base64: 12345, finishReason: 'MAYBE' }] }),
  async handle({ req, body, params, settings }) {
    let request: TextToImageRequest;
    try {
      request = JSON.parse(body.toString('utf8')) as TextToImageRequest;
    } catch {
      return stabilityError(400, 'invalid_body', 'the request body is not valid JSON');
    }
    if (!/^[a-z0-9][a-z0-9.-]*$/i.test(params.engine_id ?? ''))
      return stabilityError(404, 'engine_not_found', `engine ${params.engine_id ?? ''} does not exist`);
    const prompts = request.text_prompts;
    if (
      !Array.isArray(prompts) ||
      prompts.length === 0 ||
      prompts.some((prompt) => typeof prompt?.text !== 'string' || !prompt.text || prompt.text.length > 2000)
    ) {
      return stabilityError(400, 'invalid_prompts', 'text_prompts: at least one prompt with a non-empty text of at most 2000 characters is required');
    }
    const width = dimension(request.width, 'width');
    const height = dimension(request.height, 'height');
    if (typeof width === 'string') return stabilityError(400, 'invalid_width', width);
    if (typeof height === 'string') return stabilityError(400, 'invalid_height', height);
    if (width * height > 1_048_576) return stabilityError(400, 'invalid_dimensions', 'width * height must be at most 1,048,576 pixels');
    const samples = request.samples === undefined ? 1 : request.samples;
    if (typeof samples !== 'number' || !Number.isInteger(samples) || samples < 1 || samples > 10)
      return stabilityError(400, 'invalid_samples', 'samples must be an integer from 1 to 10');
    const askedSeed = request.seed === undefined ? 0 : request.seed;
    if (typeof askedSeed !== 'number' || !Number.isInteger(askedSeed) || askedSeed < 0 || askedSeed > 4_294_967_295) {
      return stabilityError(400, 'invalid_seed', 'seed must be an integer from 0 to 4294967295');
    }
    const promptText = prompts.map((prompt: { text: string }) => prompt.text).join('\n');
    if (promptText.includes(REFUSAL_MARKER)) return stabilityError(400, 'invalid_prompts', 'Invalid prompts detected');
    // Seed 0 means "random" for Stability; here it is derived from the prompt so answers stay reproducible.
    const seedOf = (index: number) => (askedSeed === 0 ? deriveSeed(settings.seed, 'stability', promptText, index) : (askedSeed + index) >>> 0);
    if (req.headers.accept === 'image/png') {
      const seed = seedOf(0);
      return bytesReply(200, pictureFor(width, height, seed), 'image/png', { 'finish-reason': 'SUCCESS', seed: String(seed) });
    }
    const artifacts = Array.from({ length: samples }, (_, index) => {
      const seed = seedOf(index);
      return { base64: pictureFor(width, height, seed).toString('base64'), seed, finishReason: 'SUCCESS' };
    });
    return jsonReply(200, { artifacts });
  },
};
