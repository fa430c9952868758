/**
 * Choosing a video's clips once its analysis and transcript are in: boundaries on speech
 * (transcript sentences when there is a transcript, pauses in the audio otherwise, scene cuts
 * when there is no speech), then one chat-completions call that scores the candidates by what
 * is said, combined with the picture-and-sound score. Without a provider, a transcript or with
 * the provider down, the signal score alone decides and the reasons say so.
 */
import { z } from 'zod';
import {
  chooseClips,
  speechBoundaries,
  textBetween,
  type AiResultsRepository,
  type AnalysisRepository,
  type AnalyzeResult,
  type ClipCandidate,
  type HighlightSignals,
  type TimedText,
  type TranscriptView,
} from '@clipline/shared';
import { ProviderError, ProviderNotConfiguredError, type OpenAiClient } from '../providers/index.js';

export interface SelectionDependencies {
  analyses: AnalysisRepository;
  results: AiResultsRepository;
  openai: OpenAiClient;
}

/** The clips chosen, and how, in words users read on the persist step. */
export interface ClipSelection {
  clips: ClipCandidate[];
  boundaries: 'transcript' | 'pauses' | 'scenes';
  ranking: 'content and signals' | 'signals';
  /** One line: what the boundaries followed and what ranked the clips. */
  summary: string;
  /** Why fewer clips than asked, when so. */
  shortfall?: string;
}

/** Share of the content score in a clip's combined score; the signal score has the rest. */
export const CONTENT_WEIGHT = 0.6;
/** Candidates offered to the ranking per clip asked for, and at most in all. */
const POOL_PER_CLIP = 2;
const MAX_POOL = 20;
/** Characters of transcript sent per candidate. */
const MAX_CANDIDATE_TEXT = 1200;
const FRAME_PAGE = 10_000;

export const rankingSchema = z.object({
  // A reason past its length is shortened where it is shown (below), not a reason to drop the whole ranking.
  scores: z.array(z.object({ index: z.number().int().min(0), score: z.number().min(0).max(100), reason: z.string().trim().min(1).max(20_000) })),
});

const RANKING_JSON_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['scores'],
  properties: {
    scores: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['index', 'score', 'reason'],
        properties: {
          index: { type: 'integer', description: 'the candidate number as given' },
          score: { type: 'integer', minimum: 0, maximum: 100 },
          reason: { type: 'string', description: 'one line of at most 150 characters: the hook, whether it stands alone, its payoff' },
        },
      },
    },
  },
};

const RANKING_PROMPT =
  'You pick short-form clips from a longer video. Score each candidate 0-100 for how well it works posted on its own: ' +
  'a hook in the first seconds, a complete thought a viewer understands without the rest of the video, and a payoff. ' +
  'Give one short reason per candidate. Answer with JSON only.';

/** Per-frame signals of the video as analysis stored them, or null when they are not stored. */
export async function storedSignals(analyses: AnalysisRepository, videoId: string, analysis: AnalyzeResult): Promise<HighlightSignals | null> {
  const frames = [];
  for (let from = 0; ; from += FRAME_PAGE) {
    const page = await analyses.listFrameMetrics(videoId, from, FRAME_PAGE);
    frames.push(...page);
    if (page.length < FRAME_PAGE) break;
  }
  if (frames.length === 0 || frames.length !== analysis.sampledFrames) return null;
  const motion = new Float32Array(frames.length);
  const sharpness = new Float32Array(frames.length);
  const dhash = new Uint8Array(frames.length * 8);
  frames.forEach((frame, index) => {
    motion[index] = frame.motion;
    sharpness[index] = frame.sharpness;
    dhash.set(Buffer.from(frame.dhash.padStart(16, '0').slice(-16), 'hex'), index * 8);
  });
  const loudness = analysis.metadata.hasAudio ? await analyses.findAudioLoudness(videoId) : undefined;
  return {
    fps: analysis.sampleFps,
    durationSeconds: analysis.metadata.durationSeconds,
    motion,
    sharpness,
    dhash,
    cutFrames: analysis.cutSeconds.map((seconds) => Math.round(seconds * analysis.sampleFps)),
    loudness: loudness ? { stepSeconds: loudness.stepSeconds, shortTermLufs: Float32Array.from(loudness.shortTermLufs) } : null,
  };
}

/** Sentences as the transcript gave them (its segments). */
function sentencesOf(transcript: TranscriptView | undefined): TimedText[] {
  return (transcript?.segments ?? [])
    .filter((segment) => segment.text.trim())
    .map(({ startSeconds, endSeconds, text }) => ({ startSeconds, endSeconds, text }));
}

/** Chooses the clips of an analysed video; see the module comment. */
export async function selectClips(deps: SelectionDependencies, videoId: string, analysis: AnalyzeResult, signal?: AbortSignal): Promise<ClipSelection> {
  const options = analysis.clipOptions;
  const [signals, transcript] = await Promise.all([storedSignals(deps.analyses, videoId, analysis), deps.results.transcript(videoId)]);
  const sentences = sentencesOf(transcript);
  if (!signals) {
    // Frame signals are gone (an analysis reused from a video since deleted): keep analysis's own choice.
    return { clips: analysis.clipCandidates, boundaries: 'scenes', ranking: 'signals', summary: 'clips as analysis chose them (frame signals not stored)' };
  }
  const pauses = analysis.speech?.pauses ?? [];
  const speech = speechBoundaries(analysis.metadata.durationSeconds, pauses, sentences.length ? sentences : undefined);
  const canRank = deps.openai.configured && sentences.length > 0;
  const poolSize = canRank ? Math.min(MAX_POOL, options.clipCount * POOL_PER_CLIP) : options.clipCount;
  const choice = chooseClips(signals, { ...options, speech, poolSize });
  const ranked = await rankByContent(deps.openai, choice.clips, sentences, canRank, signal);
  const clips = ranked.clips.slice(0, options.clipCount);
  const boundaryText = { transcript: 'cut on transcript sentences', pauses: 'cut on pauses in the audio', scenes: 'cut on scene changes' }[choice.boundaries];
  return {
    clips,
    boundaries: choice.boundaries,
    ranking: ranked.ranking,
    summary: `${boundaryText}; ranked by ${ranked.ranking === 'signals' ? `picture and sound only (${ranked.why})` : 'what is said and by picture and sound'}`,
    ...(choice.shortfall ? { shortfall: choice.shortfall } : {}),
  };
}

/** The reasons that say how a clip was ranked, not what is in it (a provider's error among them). */
const SIGNALS_ONLY_NOTE = 'ranked on picture and sound only: ';
const NOT_SCORED_NOTE = 'not scored by content';

/**
 * A clip's reasons that describe it (its motion, sound, words), without the notes on how it was
 * ranked: what prompts for its captions and cover image are made of. A note carries a provider's
 * error text at times, which an image model would draw as text.
 */
export function describingReasons(reasons: readonly string[]): string[] {
  return reasons.filter((reason) => !reason.startsWith(SIGNALS_ONLY_NOTE) && reason !== NOT_SCORED_NOTE);
}

/**
 * Scores the candidates by their words in one chat call and orders them by the combined score;
 * without the call (no provider, no transcript, provider down), by the signal score alone.
 */
async function rankByContent(
  openai: OpenAiClient,
  pool: readonly ClipCandidate[],
  sentences: readonly TimedText[],
  canRank: boolean,
  signal?: AbortSignal,
): Promise<{ clips: ClipCandidate[]; ranking: ClipSelection['ranking']; why?: string }> {
  const signalsOnly = (why: string) => ({
    // A provider's message can be long (an HTML error page, a quota notice): a reason holds 200 characters.
    clips: pool.map((clip) => ({ ...clip, reasons: [...clip.reasons, `${SIGNALS_ONLY_NOTE}${why}`.slice(0, 200)].slice(0, 10) })),
    ranking: 'signals' as const,
    why,
  });
  if (!openai.configured) return signalsOnly('no OpenAI API key configured (OPENAI_API_KEY)');
  if (!canRank || pool.length === 0) return signalsOnly('no transcript');
  const texts = pool.map((clip) => textBetween(sentences, clip.startSeconds, clip.endSeconds).slice(0, MAX_CANDIDATE_TEXT));
  let scores: z.infer<typeof rankingSchema>['scores'];
  try {
    const answer = await openai.chatJson(
      {
        name: 'clip_ranking',
        jsonSchema: RANKING_JSON_SCHEMA,
        messages: [
          { role: 'system', content: RANKING_PROMPT },
          { role: 'user', content: texts.map((text, index) => `Candidate ${index}:\n${text || '(no speech)'}`).join('\n\n') },
        ],
      },
      rankingSchema,
      signal ? { signal } : {},
    );
    scores = answer.scores;
  } catch (error) {
    if (signal?.aborted) throw error;
    // Ranking improves clips; it never holds a video up. The signal score decides instead.
    if (error instanceof ProviderNotConfiguredError || error instanceof ProviderError) return signalsOnly(`content ranking unavailable (${error.message})`);
    throw error;
  }
  const byIndex = new Map(scores.filter((entry) => entry.index < pool.length).map((entry) => [entry.index, entry]));
  const clips = pool.map((clip, index) => {
    const content = byIndex.get(index);
    if (!content) return { ...clip, reasons: [...clip.reasons, NOT_SCORED_NOTE].slice(0, 10) };
    const score = Math.round(CONTENT_WEIGHT * content.score + (1 - CONTENT_WEIGHT) * clip.score);
    return { ...clip, score, reasons: [`content ${Math.round(content.score)}/100: ${content.reason}`.slice(0, 200), ...clip.reasons].slice(0, 10) };
  });
  return { clips: clips.sort((a, b) => b.score - a.score || a.startSeconds - b.startSeconds), ranking: 'content and signals' };
}
