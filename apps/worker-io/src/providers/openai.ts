import { openAsBlob } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { CallOptions } from './call-options.js';
import { parseAnswer } from './provider-answer.js';
import { ProviderDeclinedError } from './provider-errors.js';
import type { ProviderSettings } from './provider-config.js';
import { ProviderClient } from './provider-client.js';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface ChatRequest {
  messages: readonly ChatMessage[];
  /** @defaultValue OPENAI_CHAT_MODEL */
  model?: string;
  maxTokens?: number;
  temperature?: number;
}

export interface ChatResult {
  id: string;
  model: string;
  content: string;
  finishReason: string;
  usage: { promptTokens: number; completionTokens: number; totalTokens: number } | undefined;
}

export interface TranscriptSegment {
  start: number;
  end: number;
  text: string;
}

export interface Transcript {
  text: string;
  language: string;
  durationSeconds: number;
  segments: TranscriptSegment[];
  /** Word timestamps (`timestamp_granularities[]=word`); empty when the model gives none. */
  words: TranscriptSegment[];
}

const chatCompletionSchema = z.object({
  id: z.string(),
  object: z.literal('chat.completion'),
  model: z.string(),
  choices: z
    .array(
      z.object({
        index: z.number().int(),
        message: z.object({ role: z.literal('assistant'), content: z.string().nullable(), refusal: z.string().nullable().optional() }),
        finish_reason: z.string().nullable(),
      }),
    )
    .min(1, 'no choices'),
  usage: z.object({ prompt_tokens: z.number(), completion_tokens: z.number(), total_tokens: z.number() }).optional(),
});

const verboseTranscriptionSchema = z.object({
  text: z.string(),
  language: z.string(),
  duration: z.number().nonnegative(),
  segments: z.array(z.object({ start: z.number(), end: z.number(), text: z.string() })).default([]),
  words: z.array(z.object({ word: z.string(), start: z.number(), end: z.number() })).default([]),
});

/** OpenAI: chat completions (captions, titles, hashtags) and audio transcriptions. */
export class OpenAiClient extends ProviderClient<ProviderSettings['openai']> {
  private async complete(body: Record<string, unknown>, options: CallOptions): Promise<ChatResult> {
    const answer = await this.guard.run(() => this.http.request({ method: 'POST', path: 'chat/completions', json: body, ...options }), options.signal);
    const parsed = parseAnswer('openai', 'chat completion', chatCompletionSchema, answer.body);
    const [choice] = parsed.choices;
    if (!choice) throw new Error('unreachable: the schema requires one choice');
    if (choice.message.content === null) {
      // A refusal is the model's answer to this input; asking again would cost money for the same result.
      throw new ProviderDeclinedError('openai', `openai declined to answer: ${choice.message.refusal ?? 'no content in the reply'}`);
    }
    return {
      id: parsed.id,
      model: parsed.model,
      content: choice.message.content,
      finishReason: choice.finish_reason ?? 'unknown',
      usage: parsed.usage && {
        promptTokens: parsed.usage.prompt_tokens,
        completionTokens: parsed.usage.completion_tokens,
        totalTokens: parsed.usage.total_tokens,
      },
    };
  }

  private requestBody(request: ChatRequest): Record<string, unknown> {
    return {
      model: request.model ?? this.settings.chatModel,
      messages: request.messages,
      ...(request.maxTokens !== undefined ? { max_completion_tokens: request.maxTokens } : {}),
      ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
    };
  }

  /** `POST /chat/completions`; never retried here (it costs money): a failed call throws a ProviderError. */
  chatCompletion(request: ChatRequest, options: CallOptions = {}): Promise<ChatResult> {
    return this.complete(this.requestBody(request), options);
  }

  /**
   * A chat completion with a JSON-schema response format, parsed with `schema`. A reply that
   * is not JSON or does not fit the schema is a ProviderInvalidResponseError.
   */
  async chatJson<S extends z.ZodType>(
    request: ChatRequest & { name: string; jsonSchema: Record<string, unknown> },
    schema: S,
    options: CallOptions = {},
  ): Promise<z.output<S>> {
    const body = {
      ...this.requestBody(request),
      response_format: { type: 'json_schema', json_schema: { name: request.name, schema: request.jsonSchema, strict: true } },
    };
    const result = await this.complete(body, options);
    return parseAnswer('openai', `${request.name} reply`, schema, result.content);
  }

  /**
   * `POST /audio/transcriptions` with `verbose_json`, streaming the file from disk. OpenAI
   * takes files up to 25 MB; extract a compressed audio track first for longer sources.
   */
  async transcribe(audioPath: string, request: { model?: string; language?: string; prompt?: string } = {}, options: CallOptions = {}): Promise<Transcript> {
    // Opened before the guard: a missing local file says nothing about the provider's health.
    const audio = await openAsBlob(audioPath);
    const form = new FormData();
    form.set('file', audio, path.basename(audioPath));
    form.set('model', request.model ?? this.settings.transcriptionModel);
    form.set('response_format', 'verbose_json');
    // Segments and words: clip boundaries follow sentences, burned captions follow words.
    form.append('timestamp_granularities[]', 'segment');
    form.append('timestamp_granularities[]', 'word');
    if (request.language) form.set('language', request.language);
    if (request.prompt) form.set('prompt', request.prompt);
    const answer = await this.guard.run(() => this.http.request({ method: 'POST', path: 'audio/transcriptions', form, ...options }), options.signal);
    const parsed = parseAnswer('openai', 'transcription', verboseTranscriptionSchema, answer.body);
    return {
      text: parsed.text.trim(),
      language: parsed.language,
      durationSeconds: parsed.duration,
      segments: parsed.segments.map((segment) => ({ start: segment.start, end: segment.end, text: segment.text.trim() })),
      words: parsed.words.map((word) => ({ start: word.start, end: word.end, text: word.word.trim() })),
    };
  }
}
