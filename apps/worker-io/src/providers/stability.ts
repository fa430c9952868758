import { z } from 'zod';
import type { CallOptions } from './call-options.js';
import { parseAnswer } from './provider-answer.js';
import type { ProviderSettings } from './provider-config.js';
import { ProviderInvalidResponseError } from './provider-errors.js';
import { ProviderClient } from './provider-client.js';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const generationSchema = z.object({
  artifacts: z
    .array(z.object({ base64: z.string().min(1), seed: z.number(), finishReason: z.enum(['SUCCESS', 'ERROR', 'CONTENT_FILTERED']) }))
    .min(1, 'no artifacts'),
});

export interface ImageRequest {
  prompt: string;
  negativePrompt?: string;
  /** Multiples of 64; SDXL engines take only certain sizes (1024x1024, 1344x768, 768x1344, …). @defaultValue 1024 */
  width?: number;
  /** @defaultValue 1024 */
  height?: number;
  /** 0 lets the provider choose. @defaultValue 0 */
  seed?: number;
  /** @defaultValue STABILITY_ENGINE_ID */
  engineId?: string;
}

export interface GeneratedImage {
  png: Buffer;
  seed: number;
  /** `CONTENT_FILTERED` images may be blurred: callers decide whether to use them or fall back. */
  finishReason: 'SUCCESS' | 'CONTENT_FILTERED';
}

/** Stability AI v1 text-to-image (thumbnails). */
export class StabilityClient extends ProviderClient<ProviderSettings['stability']> {
  /** `POST /v1/generation/{engine}/text-to-image` for one image; never retried here (it costs money). */
  async textToImage(request: ImageRequest, options: CallOptions = {}): Promise<GeneratedImage> {
    const engine = encodeURIComponent(request.engineId ?? this.settings.engineId);
    const body = {
      text_prompts: [{ text: request.prompt, weight: 1 }, ...(request.negativePrompt ? [{ text: request.negativePrompt, weight: -1 }] : [])],
      width: request.width ?? 1024,
      height: request.height ?? 1024,
      samples: 1,
      seed: request.seed ?? 0,
    };
    const answer = await this.guard.run(
      () =>
        this.http.request({ method: 'POST', path: `v1/generation/${engine}/text-to-image`, json: body, headers: { accept: 'application/json' }, ...options }),
      options.signal,
    );
    const [artifact] = parseAnswer('stability', 'text-to-image answer', generationSchema, answer.body).artifacts;
    if (!artifact) throw new Error('unreachable: the schema requires one artifact');
    if (artifact.finishReason === 'ERROR') throw new ProviderInvalidResponseError('stability', 'stability finished the image with ERROR');
    const png = Buffer.from(artifact.base64, 'base64');
    if (!png.subarray(0, 8).equals(PNG_SIGNATURE)) throw new ProviderInvalidResponseError('stability', 'stability answered an artifact that is not a PNG');
    return { png, seed: artifact.seed, finishReason: artifact.finishReason };
  }
}
