import type { CallOptions } from './call-options.js';
import type { ProviderSettings } from './provider-config.js';
import { ProviderClient } from './provider-client.js';

/** Largest speech file accepted. @defaultValue 50 MiB */
const MAX_AUDIO_BYTES = 50 * 1024 * 1024;

/** True for an ID3 tag or an MPEG audio frame sync at the start of the bytes. */
function looksLikeMp3(head: Buffer): boolean {
  if (head.subarray(0, 3).toString('latin1') === 'ID3') return true;
  return head.length >= 2 && head[0] === 0xff && ((head[1] ?? 0) & 0xe0) === 0xe0;
}

export interface SpeechRequest {
  text: string;
  /** @defaultValue ELEVENLABS_VOICE_ID */
  voiceId?: string;
  /** @defaultValue ELEVENLABS_MODEL_ID */
  modelId?: string;
  /** An `mp3_*` format. @defaultValue mp3_44100_128 */
  outputFormat?: `mp3_${string}`;
}

/** ElevenLabs text-to-speech (voice-overs), streamed to a file. */
export class ElevenLabsClient extends ProviderClient<ProviderSettings['elevenlabs']> {
  /**
   * `POST /v1/text-to-speech/{voice}`: streams the MP3 into `destinationPath` (replaced only
   * when the whole file arrived and starts like MP3). Never retried here (it costs money).
   */
  async synthesizeSpeech(
    request: SpeechRequest,
    destinationPath: string,
    options: CallOptions = {},
  ): Promise<{ bytes: number; contentType: string | undefined }> {
    const voice = encodeURIComponent(request.voiceId ?? this.settings.voiceId);
    return this.guard.run(
      () =>
        this.http.download(
          {
            method: 'POST',
            path: `v1/text-to-speech/${voice}`,
            searchParams: { output_format: request.outputFormat ?? 'mp3_44100_128' },
            headers: { accept: 'audio/mpeg' },
            json: { text: request.text, model_id: request.modelId ?? this.settings.modelId },
            ...options,
          },
          destinationPath,
          {
            maxBytes: MAX_AUDIO_BYTES,
            inspect: (contentType, head) => {
              if (contentType && !/^audio\//i.test(contentType)) return `content type ${contentType}, expected audio/mpeg`;
              return looksLikeMp3(head) ? undefined : 'the body does not start like MP3 audio';
            },
          },
        ),
      options.signal,
    );
  }
}
