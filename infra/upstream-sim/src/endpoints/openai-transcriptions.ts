import { bytesReply, jsonReply } from '../http-io.js';
import type { Pause } from '@clipline/shared/clips';
import { decodeRecording } from '../media-tools.js';
import { type MultipartError, parseMultipart } from '../multipart.js';
import type { SeededRandom } from '../seeded-random.js';
import { words } from '../generated-text.js';
import { matchPath, type EndpointDefinition } from './endpoint.js';
import { checkOpenAiKey, openAiError, openAiFaults } from './openai-shared.js';

/** Speech longer than this without a pause is split into segments of about half of it. */
const LONGEST_SEGMENT_SECONDS = 12;
const WORDS_PER_SECOND = 2.5;
const FORMATS = ['json', 'text', 'srt', 'verbose_json', 'vtt'] as const;
const SUPPORTED_EXTENSIONS = ['flac', 'm4a', 'mp3', 'mp4', 'mpeg', 'mpga', 'oga', 'ogg', 'wav', 'webm'];

interface Segment {
  id: number;
  start: number;
  end: number;
  words: string[];
}

/** Sound shorter than this between pauses is a click or codec padding, not a word. */
const SHORTEST_WORD_SECONDS = 0.15;

/** The stretches between pauses: where the recording speaks. */
function spokenStretches(duration: number, pauses: readonly Pause[]): { start: number; end: number }[] {
  const stretches: { start: number; end: number }[] = [];
  let from = 0;
  for (const pause of pauses) {
    if (pause.startSeconds - from >= SHORTEST_WORD_SECONDS) stretches.push({ start: from, end: pause.startSeconds });
    from = Math.max(from, pause.endSeconds);
  }
  if (duration - from >= SHORTEST_WORD_SECONDS) stretches.push({ start: from, end: duration });
  return stretches;
}

/**
 * Segments where the audio speaks, as a speech model finds them: one sentence per stretch
 * between pauses (ending in a full stop), a long stretch split into phrases that only the last
 * one ends. Word counts follow the stretch's length; the words are generated from the seed.
 */
function transcriptSegments(duration: number, pauses: readonly Pause[], random: SeededRandom): Segment[] {
  const segments: Segment[] = [];
  for (const stretch of spokenStretches(duration, pauses)) {
    const length = stretch.end - stretch.start;
    const pieces = length > LONGEST_SEGMENT_SECONDS ? Math.ceil(length / (LONGEST_SEGMENT_SECONDS / 2)) : 1;
    for (let k = 0; k < pieces; k++) {
      const start = stretch.start + (k * length) / pieces;
      const end = stretch.start + ((k + 1) * length) / pieces;
      const spoken = words(random, Math.max(1, Math.round((end - start) * WORDS_PER_SECOND)));
      if (k === 0) spoken[0] = spoken[0]!.charAt(0).toUpperCase() + spoken[0]!.slice(1);
      if (k === pieces - 1) spoken[spoken.length - 1] = `${spoken.at(-1)}.`;
      segments.push({ id: segments.length, start, end, words: spoken });
    }
  }
  return segments;
}

/** Word times inside a segment: equal shares of it, each word ending a little before the next starts. */
function timedWords(segment: Segment): { word: string; start: number; end: number }[] {
  const step = (segment.end - segment.start) / segment.words.length;
  return segment.words.map((word, index) => ({
    word,
    start: round(segment.start + index * step),
    end: round(segment.start + (index + 1) * step - Math.min(0.05, step / 4)),
  }));
}

const round = (seconds: number) => Math.round(seconds * 1000) / 1000;

function timestamp(seconds: number, separator: ',' | '.'): string {
  const ms = Math.round(seconds * 1000);
  const pad = (value: number, width = 2) => String(value).padStart(width, '0');
  return `${pad(Math.floor(ms / 3_600_000))}:${pad(Math.floor(ms / 60_000) % 60)}:${pad(Math.floor(ms / 1000) % 60)}${separator}${pad(ms % 1000, 3)}`;
}

/**
 * `POST /v1/audio/transcriptions` (multipart). The upload is probed with ffprobe: what it cannot
 * read is refused as OpenAI does. The transcript follows the audio: segments and words where it
 * speaks, none in its pauses.
 */
export const openAiTranscriptions: EndpointDefinition = {
  id: 'openai.audio.transcriptions',
  methods: ['POST'],
  bodyLimitBytes: 25 * 1024 * 1024,
  match: (pathname) => matchPath('/v1/audio/transcriptions', pathname),
  checkAuth: (req, _url, settings) => checkOpenAiKey(req, settings),
  ...openAiFaults,
  malformed: () => jsonReply(200, { transcript: ['not', 'the', 'contract'] }),
  async handle({ req, body, random, settings }) {
    let parts: ReturnType<typeof parseMultipart>;
    try {
      parts = parseMultipart(body, req.headers['content-type']);
    } catch (error) {
      return openAiError(400, (error as MultipartError).message, 'invalid_request_error');
    }
    const field = (name: string) => parts.find((part) => part.name === name);
    const file = field('file');
    if (!file || file.filename === undefined)
      return openAiError(400, "Missing required parameter: 'file'.", 'invalid_request_error', 'missing_required_parameter', 'file');
    const model = field('model')?.data.toString('utf8');
    if (!model) return openAiError(400, "Missing required parameter: 'model'.", 'invalid_request_error', 'missing_required_parameter', 'model');
    const format = field('response_format')?.data.toString('utf8') ?? 'json';
    if (!(FORMATS as readonly string[]).includes(format)) {
      return openAiError(
        400,
        `Invalid value for 'response_format': the simulator supports ${FORMATS.join(', ')}.`,
        'invalid_request_error',
        'invalid_value',
        'response_format',
      );
    }
    // One decode gives the recording's length and where it speaks.
    const recording = await decodeRecording(settings.ffmpegPath, file.data, file.filename);
    if (recording === undefined) {
      return openAiError(400, `Invalid file format. Supported formats: ${JSON.stringify(SUPPORTED_EXTENSIONS)}`, 'invalid_request_error', null, 'file');
    }
    const { seconds: duration, activity } = recording;
    // Segments follow the recording: speech between its pauses, nothing over silence.
    const segments = activity.speechSeconds === 0 ? [] : transcriptSegments(duration, activity.pauses, random);
    const text = segments.map((segment) => segment.words.join(' ')).join(' ');
    const usage = { type: 'duration', seconds: Math.ceil(duration) };
    const granularities = parts.filter((part) => part.name === 'timestamp_granularities[]').map((part) => part.data.toString('utf8'));
    switch (format) {
      case 'text':
        return bytesReply(200, Buffer.from(`${text}\n`), 'text/plain; charset=utf-8');
      case 'srt':
      case 'vtt': {
        const separator = format === 'srt' ? ',' : '.';
        const cues = segments.map(
          (segment) =>
            `${format === 'srt' ? `${segment.id + 1}\n` : ''}${timestamp(segment.start, separator)} --> ${timestamp(segment.end, separator)}\n${segment.words.join(' ')}\n`,
        );
        const document = `${format === 'vtt' ? 'WEBVTT\n\n' : ''}${cues.join('\n')}`;
        return bytesReply(200, Buffer.from(document), format === 'srt' ? 'application/x-subrip' : 'text/vtt');
      }
      case 'verbose_json': {
        const wordTimes = segments.flatMap(timedWords);
        return jsonReply(200, {
          task: 'transcribe',
          language: 'english',
          duration: round(duration),
          text,
          segments: segments.map((segment) => ({
            id: segment.id,
            seek: Math.round(segment.start * 100),
            start: round(segment.start),
            end: round(segment.end),
            text: ` ${segment.words.join(' ')}`,
            tokens: segment.words.map((_, index) => 50364 + segment.id * 100 + index),
            temperature: 0,
            avg_logprob: -0.25,
            compression_ratio: 1.2,
            no_speech_prob: 0.01,
          })),
          ...(granularities.includes('word') ? { words: wordTimes } : {}),
          usage,
        });
      }
      default:
        return jsonReply(200, { text, usage });
    }
  },
};
