/**
 * Validators built from the providers' published contracts in ../shared/fixtures/apis, so the
 * simulator's answers are checked against what the vendors say, not against our own reading.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import Ajv, { type ValidateFunction } from 'ajv';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

export const FIXTURES_DIR = path.resolve(import.meta.dirname ?? '.', '../../../../shared/fixtures/apis');

function load(file: string): Record<string, unknown> {
  return JSON.parse(readFileSync(path.join(FIXTURES_DIR, file), 'utf8')) as Record<string, unknown>;
}

/** Vendor formats that JSON Schema does not define; numbers and strings carrying them are checked by type only. */
const VENDOR_FORMATS = [
  'unixtime',
  'binary',
  'double',
  'float',
  'int32',
  'int64',
  'uint32',
  'uint64',
  'byte',
  'google-datetime',
  'google-duration',
  'google-fieldmask',
];

function withFormats<T extends Ajv>(ajv: T): T {
  addFormats(ajv);
  for (const format of VENDOR_FORMATS) ajv.addFormat(format, true);
  return ajv;
}

/** Escapes a JSON pointer segment (RFC 6901). */
const pointer = (...segments: string[]) => segments.map((segment) => segment.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');

/**
 * Turns a Google discovery schema into JSON Schema: `$ref: "Name"` becomes a definitions
 * reference and discovery-only keywords go. Objects are closed (`additionalProperties: false`
 * where the document does not say otherwise) because a discovery document lists every field a
 * resource can have, so an invented field is an error of the simulator.
 */
export function discoveryToJsonSchema(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(discoveryToJsonSchema);
  if (typeof node !== 'object' || node === null) return node;
  const source = node as Record<string, unknown>;
  const result: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(source)) {
    if (key === 'id' || key === 'annotations' || key === 'enumDescriptions' || key === 'location' || key === 'repeated') continue;
    if (key === '$ref' && typeof value === 'string') result.$ref = `#/definitions/${value}`;
    else if (key === 'properties' || key === 'definitions') {
      result[key] = Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([name, inner]) => [name, discoveryToJsonSchema(inner)]));
    } else result[key] = discoveryToJsonSchema(value);
  }
  if (result.type === 'object' && result.properties && result.additionalProperties === undefined) result.additionalProperties = false;
  return result;
}

export interface ProviderContracts {
  youtubeVideoList: ValidateFunction;
  youtubeError: ValidateFunction;
  chatCompletion: ValidateFunction;
  transcriptionJson: ValidateFunction;
  transcriptionVerboseJson: ValidateFunction;
  openAiError: ValidateFunction;
  /** The schema of the 200 JSON answer of text-to-image (the list of artifacts). */
  stabilityArtifacts: ValidateFunction;
  stabilityError: ValidateFunction;
  elevenLabsValidationError: ValidateFunction;
}

export function loadContracts(): ProviderContracts {
  const openAiAjv = withFormats(new Ajv2020({ strict: false, allErrors: true }));
  openAiAjv.addSchema(load('openai-chat-audio.openapi.json'), 'openai');
  const openAi = (name: string) => openAiAjv.compile({ $ref: `openai#/components/schemas/${name}` });

  const stabilityAjv = withFormats(new Ajv({ strict: false, allErrors: true }));
  stabilityAjv.addSchema(load('stability-v1.openapi.json'), 'stability');
  const textToImage = pointer('paths', '/generation/{engine_id}/text-to-image', 'post', 'responses', '200', 'content', 'application/json', 'schema');

  const elevenLabsAjv = withFormats(new Ajv2020({ strict: false, allErrors: true }));
  elevenLabsAjv.addSchema(load('elevenlabs-text-to-speech.openapi.json'), 'elevenlabs');

  const discovery = load('youtube-v3.discovery.json') as { schemas: Record<string, unknown> };
  const youtubeAjv = withFormats(new Ajv({ strict: false, allErrors: true }));
  const definitions = discoveryToJsonSchema({ definitions: discovery.schemas }) as { definitions: Record<string, unknown> };
  // Google's error envelope is not in the discovery document; this is its documented JSON shape.
  const googleError = {
    type: 'object',
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        required: ['code', 'message', 'status'],
        properties: {
          code: { type: 'integer' },
          message: { type: 'string' },
          status: { type: 'string' },
          errors: { type: 'array', items: { type: 'object', required: ['message', 'domain', 'reason'] } },
          details: { type: 'array' },
        },
      },
    },
  };

  return {
    youtubeVideoList: youtubeAjv.compile({ ...definitions, $ref: '#/definitions/VideoListResponse' }),
    youtubeError: youtubeAjv.compile(googleError),
    chatCompletion: openAi('CreateChatCompletionResponse'),
    transcriptionJson: openAi('CreateTranscriptionResponseJson'),
    transcriptionVerboseJson: openAi('CreateTranscriptionResponseVerboseJson'),
    openAiError: openAi('ErrorResponse'),
    stabilityArtifacts: stabilityAjv.compile({ $ref: `stability#/${textToImage}` }),
    stabilityError: stabilityAjv.compile({ $ref: 'stability#/components/schemas/Error' }),
    elevenLabsValidationError: elevenLabsAjv.compile({ $ref: 'elevenlabs#/components/schemas/HTTPValidationError' }),
  };
}

/** Throws with ajv's messages when `value` does not validate, so a failing test says why. */
export function expectValid(validate: ValidateFunction, value: unknown, what: string): void {
  if (!validate(value)) {
    const problems = (validate.errors ?? []).map((error) => `${error.instancePath || '(root)'} ${error.message ?? ''}`).join('; ');
    throw new Error(`${what} breaks the provider's contract: ${problems}`);
  }
}
