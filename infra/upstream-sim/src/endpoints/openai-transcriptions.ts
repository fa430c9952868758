import { bytesReply, jsonReply } from '../http-io.js';
import { probeDuration } from '../media-tools.js';
import { type MultipartError, parseMultipart } from '../multipart.js';
import type { SeededRandom } from '../seeded-random.js';
import { words } from '../generated-text.js';
import { matchPath, type EndpointDefinition } from './endpoint.js';
import { checkOpenAiKey, openAiError, openAiFaults } from './openai-shared.js';

const SEGMENT_SECONDS = 3;
const WORDS_PER_SECOND = 2.5;
const FORMATS = ['json', 'text', 'srt', 'verbose_json', 'vtt'] as const;
const SUPPORTED_EXTENSIONS = ['flac', 'm4a', 'mp3', 'mp4', 'mpeg', 'mpga', 'oga', 'ogg', 'wav', 'webm'];

interface Segment {
  id: number;
  start: number;
  end: number;
  words: string[];
}

function transcriptSegments(duration: number, random: SeededRandom): Segment[] {
  const segments: Segment[] = [];
  for (let start = 0, id = 0; start < duration - 0.05; start += SEGMENT_SECONDS, id++) {
    const end = Math.min(duration, start + SEGMENT_SECONDS);
    segments.push({ id, start, end, words: words(random, Math.max(1, Math.round((end - start) * WORDS_PER_SECOND))) });
  }
  return segments;
}

const round = (seconds: number) => Math.round(seconds * 1000) / 1000;

function timestamp(seconds: number, separator: ',' | '.'): string {
  const ms = Math.round(seconds * 1000);
  const pad = (value: number, width = 2) => String(value).padStart(width, '0');
  return `${pad(Math.floor(ms / 3_600_000))}:${pad(Math.floor(ms / 60_000) % 60)}:${pad(Math.floor(ms / 1000) % 60)}${separator}${pad(ms % 1000, 3)}`;
}

/**
 * `POST /v1/audio/transcriptions` (multipart). The upload is probed with ffprobe: what it cannot
 * read is refused as OpenAI does, and the transcript's segments span the real duration.
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
    const duration = await probeDuration(settings.ffprobePath, file.data, file.filename);
    if (duration === undefined) {
      return openAiError(400, `Invalid file format. Supported formats: ${JSON.stringify(SUPPORTED_EXTENSIONS)}`, 'invalid_request_error', null, 'file');
    }
    const segments = transcriptSegments(duration, random);
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
        const timedWords = segments.flatMap((segment) => {
          const step = (segment.end - segment.start) / segment.words.length;
          return segment.words.map((word, index) => ({ word, start: round(segment.start + index * step), end: round(segment.start + (index + 1) * step) }));
        });
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
          ...(granularities.includes('word') ? { words: timedWords } : {}),
          usage,
        });
      }
      default:
        return jsonReply(200, { text, usage });
    }
  },
};
