import { randomBytes } from 'node:crypto';
import { jsonReply } from '../http-io.js';
import { sentence, valueForSchema } from '../generated-text.js';
import { CLIP_RANKING_SCHEMA, clipRankingReply } from './clip-ranking.js';
import { matchPath, REFUSAL_MARKER, type EndpointDefinition } from './endpoint.js';
import { checkOpenAiKey, openAiError, openAiFaults, tokenCount } from './openai-shared.js';

interface ChatRequest {
  model?: unknown;
  messages?: unknown;
  n?: unknown;
  stream?: unknown;
  response_format?: { type?: unknown; json_schema?: { name?: unknown; schema?: unknown } };
}

function messageText(message: unknown): string {
  if (typeof message !== 'object' || message === null) return '';
  const content = (message as { content?: unknown }).content;
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((part) => (typeof part?.text === 'string' ? part.text : '')).join(' ');
  return '';
}

/**
 * `POST /v1/chat/completions`. Replies are generated from the seed and the request, and honour
 * `response_format`: a `json_schema` gets a JSON object that fits the schema; a clip-ranking
 * request gets scores that follow from the candidates' text (see `clip-ranking.ts`).
 */
export const openAiChatCompletions: EndpointDefinition = {
  id: 'openai.chat.completions',
  methods: ['POST'],
  bodyLimitBytes: 5 * 1024 * 1024,
  match: (pathname) => matchPath('/v1/chat/completions', pathname),
  checkAuth: (req, _url, settings) => checkOpenAiKey(req, settings),
  ...openAiFaults,
  malformed: () => jsonReply(200, { id: 'chatcmpl-malformed', object: 'chat.completion', choices: 'not-a-list' }),
  async handle({ body, random }) {
    let request: ChatRequest;
    try {
      request = JSON.parse(body.toString('utf8')) as ChatRequest;
    } catch {
      return openAiError(
        400,
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly.)",
        'invalid_request_error',
      );
    }
    if (typeof request !== 'object' || request === null) return openAiError(400, 'The request body must be a JSON object.', 'invalid_request_error');
    if (typeof request.model !== 'string' || !request.model) return openAiError(400, 'you must provide a model parameter', 'invalid_request_error');
    if (!Array.isArray(request.messages) || request.messages.length === 0) {
      return openAiError(400, "Missing required parameter: 'messages'.", 'invalid_request_error', 'missing_required_parameter', 'messages');
    }
    if (request.stream === true)
      return openAiError(400, 'The simulator does not stream chat completions; send stream: false.', 'invalid_request_error', null, 'stream');
    const choices = typeof request.n === 'number' && Number.isInteger(request.n) ? Math.min(8, Math.max(1, request.n)) : 1;
    const format = request.response_format?.type;
    const prompt = request.messages.map(messageText).join('\n\n');
    const reply = () => {
      if (format === 'json_schema' && request.response_format?.json_schema?.name === CLIP_RANKING_SCHEMA) return clipRankingReply(prompt);
      if (format === 'json_schema') return JSON.stringify(valueForSchema(request.response_format?.json_schema?.schema ?? { type: 'object' }, random));
      if (format === 'json_object') return JSON.stringify({ text: sentence(random, 12) });
      return `${sentence(random, 10)} ${sentence(random, 8)}`;
    };
    // A prompt carrying the marker is declined, as the model declines what it will not write about.
    const declined = prompt.includes(REFUSAL_MARKER);
    const contents = Array.from({ length: choices }, () => (declined ? null : reply()));
    const promptTokens = request.messages.reduce((sum: number, message) => sum + tokenCount(messageText(message)), 0);
    const completionTokens = contents.reduce((sum, content) => sum + tokenCount(content ?? ''), 0);
    return jsonReply(
      200,
      {
        id: `chatcmpl-${randomBytes(12).toString('base64url')}`,
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model: request.model,
        choices: contents.map((content, index) => ({
          index,
          message: { role: 'assistant', content, refusal: content === null ? "I'm sorry, I can't help with that." : null, annotations: [] },
          logprobs: null,
          finish_reason: 'stop',
        })),
        usage: {
          prompt_tokens: promptTokens,
          completion_tokens: completionTokens,
          total_tokens: promptTokens + completionTokens,
          prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
          completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
        },
        service_tier: 'default',
        system_fingerprint: 'fp_upstream_sim',
      },
      { 'x-request-id': `req_${randomBytes(8).toString('hex')}`, 'openai-processing-ms': '1' },
    );
  },
};
