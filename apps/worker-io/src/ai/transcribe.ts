/**
 * The transcript step: the video's speech as text with segment and word timestamps (OpenAI
 * audio, `verbose_json`). It runs right after ingest, alongside the picture and sound analysis,
 * so clip selection can cut on sentences and rank by what is said. The audio comes from
 * {@link extractSpeech}: an AAC track copied as it is, anything else encoded for speech.
 */
import { rm } from 'node:fs/promises';
import { makeScratchDir, PermanentJobError, type JobHandle, type OptionalStepOutcome, type TranscriptSegmentRecord } from '@clipline/shared';
import type { TranscriptSegment } from '../providers/openai.js';
import type { AiStepDependencies } from './ai-steps.js';
import { extractSpeech, NoAudioTrack } from './speech-audio.js';

/** Segments with the words spoken inside each (a word belongs to the segment holding its middle). */
export function segmentsWithWords(segments: readonly TranscriptSegment[], words: readonly TranscriptSegment[]): TranscriptSegmentRecord[] {
  const records: TranscriptSegmentRecord[] = segments.map((segment) => ({ startSeconds: segment.start, endSeconds: segment.end, text: segment.text }));
  let at = 0;
  for (const word of words) {
    const middle = (word.start + word.end) / 2;
    while (at + 1 < segments.length && middle >= segments[at + 1]!.start) at++;
    const record = records[at];
    if (!record || !word.text) continue;
    record.words ??= [];
    record.words.push({ startSeconds: word.start, endSeconds: word.end, text: word.text });
  }
  return records;
}

const wordCount = (text: string) => text.split(/\s+/).filter(Boolean).length;

/** The video's speech as timed text, saved for selection, captions and burned subtitles. */
export async function transcribe(
  deps: AiStepDependencies,
  job: JobHandle<{ videoId: string }>,
): Promise<OptionalStepOutcome<{ words: number; segments: number }>> {
  // Saved by an earlier run whose end was not recorded (the database away, a worker lost): the
  // upload is the pipeline's dearest call, not made twice.
  const saved = await deps.results.transcript(job.data.videoId);
  if (saved) return { done: { words: wordCount(saved.text), segments: saved.segments.length } };
  if (!deps.providers.openai.configured) return { skipped: 'no OpenAI API key configured (OPENAI_API_KEY); clips are cut on pauses in the audio' };
  const sourceKey = await deps.analyses.findSourceKey(job.data.videoId);
  if (!sourceKey) throw new PermanentJobError('the stored source is missing');
  const dir = await makeScratchDir('audio');
  try {
    let audio: string;
    try {
      audio = await extractSpeech(deps.ffmpegPath, deps.storage.pathOf(sourceKey), dir, { signal: job.signal });
    } catch (error) {
      if (error instanceof NoAudioTrack) return { skipped: 'the video has no audio track' };
      throw error;
    }
    const transcript = await deps.providers.openai.transcribe(audio, {}, { signal: job.signal });
    await deps.results.saveTranscript(job.data.videoId, {
      text: transcript.text,
      language: transcript.language,
      durationSeconds: transcript.durationSeconds,
      segments: segmentsWithWords(transcript.segments, transcript.words),
    });
    return { done: { words: wordCount(transcript.text), segments: transcript.segments.length } };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
