/**
 * The AI steps of a video: transcript (OpenAI audio), per-clip title, caption and hashtags
 * (OpenAI chat), a generated thumbnail (Stability) and a voice-over (ElevenLabs). Each is
 * optional: without an API key it is skipped with that reason; when image generation is down the
 * sharpest frame stays the thumbnail. The transcript itself is made earlier (see `transcribe.ts`).
 */
import type { z } from 'zod';
import {
  type elevenlabsQueue,
  type openaiQueue,
  runOptionalStep,
  type stabilityQueue,
  type AiResultsRepository,
  type AnalysisRepository,
  type ClipView,
  type JobHandle,
  type LocalStorage,
  type OptionalStepOutcome,
  type Processors,
  type VideosRepository,
  writeWhole,
} from '@clipline/shared';
import {
  ProviderDeclinedError,
  ProviderError,
  ProviderInvalidResponseError,
  ProviderNotConfiguredError,
  toJobError,
  type ProviderClients,
} from '../providers/index.js';
import { CAPTION_JSON_SCHEMA, captionReply } from './caption-reply.js';
import { describingReasons } from '../pipeline/clip-selection.js';
import { transcribe } from './transcribe.js';

export interface AiStepDependencies {
  providers: ProviderClients;
  videos: VideosRepository;
  analyses: AnalysisRepository;
  results: AiResultsRepository;
  storage: LocalStorage;
  ffmpegPath: string;
}

/**
 * Runs the provider call; a missing key skips the step, anything else becomes a job error: a
 * provider judged down (breaker open) makes the job wait for it without spending an attempt,
 * until PROVIDER_OUTAGE_MAX_SECONDS, when `runOptionalStep` skips the step with that reason.
 */
async function providerStep<R>(work: () => Promise<OptionalStepOutcome<R>>): Promise<OptionalStepOutcome<R>> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof ProviderNotConfiguredError) return { skipped: error.message };
    throw toJobError(error);
  }
}

/** Transcript words spoken within [from, to], for a clip's caption prompt. */
function spokenBetween(segments: { startSeconds: number; endSeconds: number; text: string }[], from: number, to: number): string {
  return segments
    .filter((segment) => segment.endSeconds > from && segment.startSeconds < to)
    .map((segment) => segment.text.trim())
    .join(' ')
    .slice(0, 4000);
}

type VideoJob = JobHandle<{ videoId: string }>;

/** A title, caption and hashtags per rendered clip (OpenAI chat), resuming after the clips already captioned. */
export async function writeCaptions(deps: AiStepDependencies, job: VideoJob): Promise<OptionalStepOutcome<{ clips: number; written: number }>> {
  const clips = (await deps.analyses.listClips(job.data.videoId)).filter((clip) => clip.status === 'rendered');
  if (clips.length === 0) return { skipped: 'no rendered clips to caption' };
  if (!deps.providers.openai.configured) return { skipped: 'no OpenAI API key configured (OPENAI_API_KEY)' };
  const [video, transcript, existing] = await Promise.all([
    deps.videos.find(job.data.videoId),
    deps.results.transcript(job.data.videoId),
    deps.results.clipExtras(job.data.videoId),
  ]);
  let written = 0;
  const declined: string[] = [];
  for (const clip of clips) {
    // A retry resumes after the clips already captioned (each call costs money).
    if (existing.get(clip.id)?.caption) continue;
    const spoken = transcript ? spokenBetween(transcript.segments, clip.startSeconds, clip.endSeconds) : '';
    const texts = await captionOf(deps, {
      title: video?.title ?? 'untitled',
      clip,
      spoken,
      signal: job.signal,
    });
    // The model declined this clip, or answered it out of shape: its answer would be the same
    // again, so the clip goes without and the others are still captioned.
    if (texts instanceof Error) {
      declined.push(`clip ${clip.clipIndex + 1}: ${texts.message}`);
      continue;
    }
    await deps.results.saveClipExtras(job.data.videoId, clip.id, {
      title: texts.title,
      caption: texts.caption,
      hashtags: texts.hashtags,
    });
    written++;
  }
  const notes = [...(transcript ? [] : ['written without a transcript']), ...(declined.length ? [`no caption for ${declined.join('; ')}`.slice(0, 500)] : [])];
  return { done: { clips: clips.length, written }, ...(notes.length ? { note: notes.join('; ') } : {}) };
}

/** One clip's title, caption and hashtags; the error when the model declined it or answered out of shape. */
async function captionOf(
  deps: AiStepDependencies,
  input: { title: string; clip: ClipView; spoken: string; signal: AbortSignal | undefined },
): Promise<z.infer<typeof captionReply> | ProviderDeclinedError | ProviderInvalidResponseError> {
  const { clip, spoken } = input;
  try {
    return await deps.providers.openai.chatJson(
      {
        name: 'clip_caption',
        jsonSchema: CAPTION_JSON_SCHEMA,
        messages: [
          { role: 'system', content: 'You write short-form video captions. Answer with JSON only.' },
          {
            role: 'user',
            content:
              `Video title: ${input.title}\nClip ${clip.clipIndex + 1}: ${clip.startSeconds.toFixed(1)}-${clip.endSeconds.toFixed(1)} s, ` +
              `chosen because: ${describingReasons(clip.reasons).join('; ') || 'its picture and sound'}\nSpoken in the clip: ${spoken || '(no speech)'}\n` +
              'Write a title, a caption and a few hashtags.',
          },
        ],
      },
      captionReply,
      { signal: input.signal },
    );
  } catch (error) {
    if (error instanceof ProviderDeclinedError || error instanceof ProviderInvalidResponseError) return error;
    throw error;
  }
}

export function openaiProcessors(deps: AiStepDependencies): Processors<typeof openaiQueue> {
  return {
    transcribe: (job) => runOptionalStep('transcribe', job, deps.videos, () => providerStep(() => transcribe(deps, job))),
    'write-captions': (job) => runOptionalStep('captions', job, deps.videos, () => providerStep(() => writeCaptions(deps, job))),
  };
}

export function stabilityProcessors(deps: AiStepDependencies): Processors<typeof stabilityQueue> {
  return {
    'generate-thumbnail': (job) => runOptionalStep('thumbnail', job, deps.videos, () => generateThumbnails(deps, job)),
  };
}

/** Whether a provider refused this one request for what it asks (a prompt it will not draw, an answer out of shape), not the account or the service. */
function refusedThisRequest(error: unknown): boolean {
  return error instanceof ProviderInvalidResponseError || (error instanceof ProviderError && error.kind === 'permanent' && error.status === 400);
}

/** A cover image per rendered clip (Stability), resuming after the clips that have one; the sharpest frame stays where none is made. */
export async function generateThumbnails(deps: AiStepDependencies, job: VideoJob): Promise<OptionalStepOutcome<{ generated: number }>> {
  const clips = (await deps.analyses.listClips(job.data.videoId)).filter((clip) => clip.status === 'rendered');
  if (clips.length === 0) return { skipped: 'no rendered clips' };
  const fallback = 'the sharpest frame of each clip is its thumbnail';
  if (!deps.providers.stability.configured) return { skipped: `no Stability API key configured (STABILITY_API_KEY); ${fallback}` };
  const extras = await deps.results.clipExtras(job.data.videoId);
  let generated = 0;
  try {
    for (const clip of clips) {
      const texts = extras.get(clip.id);
      // Generated by an earlier run of this step (a retry, or a wait for the provider).
      if (texts?.thumbnailKey) {
        generated++;
        continue;
      }
      const image = await deps.providers.stability
        .textToImage(
          {
            prompt: `Eye-catching cover image for a short video: ${texts?.title ?? 'highlight'}. ${texts?.caption ?? (describingReasons(clip.reasons).join(', ') || 'a highlight of the video')}`,
            width: 768,
            height: 1344,
          },
          { signal: job.signal },
        )
        // This clip's prompt refused: it keeps its sharpest frame, and the other clips still get theirs.
        .catch((error: unknown) => {
          if (refusedThisRequest(error)) return undefined;
          throw error;
        });
      if (image?.finishReason !== 'SUCCESS') continue;
      const key = `videos/${job.data.videoId}/clips/${clip.clipIndex}-generated.png`;
      await writeWhole(await deps.storage.prepare(key), image.png);
      await deps.results.saveClipExtras(job.data.videoId, clip.id, { thumbnailKey: key });
      generated++;
    }
  } catch (error) {
    // Image generation refused for good (the account, the service): the sharpest frame serves.
    // Image generation down (breaker open) is waited for like any provider outage, through
    // toJobError; past PROVIDER_OUTAGE_MAX_SECONDS the step is skipped and the sharpest frames stay.
    if ((error as ProviderError).kind === 'permanent') {
      return { skipped: `image generation unavailable (${(error as Error).message}); ${fallback}` };
    }
    throw toJobError(error);
  }
  return generated === clips.length ? { done: { generated } } : { done: { generated }, note: `${clips.length - generated} clips keep the sharpest frame` };
}

export function elevenlabsProcessors(deps: AiStepDependencies): Processors<typeof elevenlabsQueue> {
  return {
    voiceover: (job) =>
      runOptionalStep('voiceover', job, deps.videos, () =>
        providerStep(async () => {
          const extras = [...(await deps.results.clipExtras(job.data.videoId)).values()].filter((clip) => clip.caption);
          if (extras.length === 0) return { skipped: 'no captions to voice' };
          if (!deps.providers.elevenlabs.configured) return { skipped: 'no ElevenLabs API key configured (ELEVENLABS_API_KEY)' };
          const clips = new Map((await deps.analyses.listClips(job.data.videoId)).map((clip) => [clip.id, clip]));
          let voiced = 0;
          for (const clip of extras) {
            if (clip.voiceoverKey) continue;
            const key = `videos/${job.data.videoId}/clips/${clips.get(clip.clipId)?.clipIndex ?? clip.clipId}-voiceover.mp3`;
            await deps.providers.elevenlabs.synthesizeSpeech({ text: clip.caption! }, await deps.storage.prepare(key), { signal: job.signal });
            await deps.results.saveClipExtras(job.data.videoId, clip.clipId, { voiceoverKey: key });
            voiced++;
          }
          return { done: { voiced } };
        }),
      ),
  };
}
