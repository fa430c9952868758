/**
 * The OpenAPI 3.1 document, generated from the same zod schemas that validate requests
 * (OpenAPI 3.1 uses JSON Schema 2020-12, which zod emits directly).
 */
import { z } from 'zod';
import {
  batchAccepted,
  cancelAccepted,
  jobAccepted,
  jobView,
  problem,
  submissionAccepted,
  userView,
  videoBatch,
  videoList,
  videoListQuery,
  videoSubmission,
  videoView,
} from './api-schemas.js';
import { userRegistration } from './routes/users.js';
import { publicJobCatalogue } from './routes/jobs.js';
import { newApiKeyRequest } from './routes/admin-keys.js';
import { failedJobsFilter } from './routes/admin-queues.js';

type Json = Record<string, unknown>;

const components: Record<string, z.ZodType> = {
  VideoSubmission: videoSubmission,
  VideoBatch: videoBatch,
  SubmissionAccepted: submissionAccepted,
  BatchAccepted: batchAccepted,
  Video: videoView,
  VideoList: videoList,
  CancelAccepted: cancelAccepted,
  JobAccepted: jobAccepted,
  Job: jobView,
  Problem: problem,
  UserRegistration: userRegistration,
  NewApiKey: newApiKeyRequest,
  FailedJobsFilter: failedJobsFilter,
  User: userView,
};

/** Every named schema, with references between them pointing into components/schemas. */
function componentSchemas(): Record<string, Json> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(components)) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, {
    target: 'draft-2020-12',
    io: 'input',
    unrepresentable: 'any',
    uri: (id) => `#/components/schemas/${id}`,
  }) as { schemas: Record<string, Json> };
  for (const schema of Object.values(schemas)) {
    delete schema.$schema;
    delete schema.$id;
    delete schema.id;
  }
  return schemas;
}

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Json {
  const generated = z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any' }) as Json;
  delete generated.$schema;
  delete generated.id;
  return generated;
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (name: string) => ({ 'application/json': { schema: ref(name) } });
const problems = (...statuses: number[]) =>
  Object.fromEntries(
    statuses.map((status) => [
      String(status),
      { description: PROBLEM_TEXT[status] ?? 'Problem', content: { 'application/problem+json': { schema: ref('Problem') } } },
    ]),
  );
const PROBLEM_TEXT: Record<number, string> = {
  400: 'The request is malformed; `detail` names the problem',
  401: 'Missing or invalid API key',
  404: 'No such resource',
  409: 'Conflict with the current state',
  413: 'Body too large',
  415: 'Body is not JSON',
  422: 'Idempotency-Key reused with another body',
  429: 'Rate limit exceeded; see Retry-After',
  503: 'Queue or database unreachable; see Retry-After',
};
const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } };
const idempotencyHeader = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  description: 'Same key and body replays the first response; another body → 422; while the first runs → 409',
  schema: { type: 'string', minLength: 1, maxLength: 255 },
};

function apiKeySchema(withKey: boolean): Json {
  return {
    type: 'object',
    properties: {
      id: { type: 'string' },
      name: { type: 'string' },
      prefix: { type: 'string' },
      tenant: { type: 'string' },
      role: { enum: ['tenant', 'admin'] },
      ...(withKey
        ? { key: { type: 'string', description: 'Shown only here' } }
        : { createdAt: { type: 'string' }, lastUsedAt: { type: ['string', 'null'] }, revokedAt: { type: ['string', 'null'] } }),
    },
  };
}

const webhookSecretSchema = {
  type: 'object',
  required: ['tenant', 'secret', 'createdAt'],
  properties: {
    tenant: { type: 'string' },
    secret: { type: 'string', pattern: '^whsec_' },
    createdAt: { type: 'string', format: 'date-time' },
    previousSecretExpiresAt: { type: ['string', 'null'], format: 'date-time' },
  },
};

/** One POST path per public job, with that job's own payload schema. */
function publicJobPaths(): Record<string, Json> {
  return Object.fromEntries(
    publicJobCatalogue().map((entry) => [
      `/v1/jobs/${entry.queue}/${entry.name}`,
      {
        post: {
          operationId: `submitJob_${entry.queue}_${entry.name}`.replace(/[^A-Za-z0-9_]/g, '_'),
          summary: `Enqueue a ${entry.name} job (${entry.queue} queue); a job that names a video runs only for the video's owner`,
          parameters: [idempotencyHeader],
          requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(entry.schema, 'input') } } },
          responses: { '202': { description: 'Queued', content: json('JobAccepted') }, ...problems(400, 401, 404, 415, 422, 429, 503) },
        },
      },
    ]),
  );
}

/** Submissions, reads, cancellation and live events of videos. */
function videoPaths(): Record<string, Json> {
  const listQuery = jsonSchema(videoListQuery, 'input') as { properties: Record<string, Json> };
  return {
    '/v1/videos': {
      post: {
        operationId: 'submitVideo',
        summary: 'Submit a video',
        parameters: [idempotencyHeader],
        requestBody: { required: true, content: json('VideoSubmission') },
        responses: { '202': { description: 'Accepted and queued', content: json('SubmissionAccepted') }, ...problems(400, 401, 409, 413, 415, 422, 429, 503) },
      },
      get: {
        operationId: 'listVideos',
        summary: 'List videos, newest first',
        parameters: Object.entries(listQuery.properties).map(([name, schema]) => ({ name, in: 'query', required: false, schema })),
        responses: { '200': { description: 'A page of videos', content: json('VideoList') }, ...problems(400, 401, 429, 503) },
      },
    },
    '/v1/videos:batch': {
      post: {
        operationId: 'submitVideos',
        summary: 'Submit up to 1000 videos in one request',
        parameters: [idempotencyHeader],
        requestBody: { required: true, content: json('VideoBatch') },
        responses: { '202': { description: 'All accepted and queued', content: json('BatchAccepted') }, ...problems(400, 401, 409, 413, 415, 422, 429, 503) },
      },
    },
    '/v1/videos/{id}': {
      get: {
        operationId: 'getVideo',
        summary: 'Status, progress, steps, metadata and scenes of a video',
        parameters: [idParam],
        responses: { '200': { description: 'The video', content: json('Video') }, ...problems(401, 404, 429, 503) },
      },
      delete: {
        operationId: 'cancelVideo',
        summary: "Cancel a video: waiting steps are removed, running ones stopped; with purge=true, remove a finished video's files and rows",
        parameters: [idParam, { name: 'purge', in: 'query', required: false, schema: { type: 'string', enum: ['true', 'false'] } }],
        responses: {
          '200': {
            description: 'Purged',
            content: {
              'application/json': {
                schema: { type: 'object', properties: { id: { type: 'string' }, status: { const: 'purged' }, bytesRemoved: { type: 'integer' } } },
              },
            },
          },
          '202': { description: 'Cancelled', content: json('CancelAccepted') },
          ...problems(400, 401, 404, 409, 429, 503),
        },
      },
    },
  };
}

/** The live event stream of a video. */
function videoEventPaths(): Record<string, Json> {
  return {
    '/v1/videos/{id}/events': {
      get: {
        operationId: 'watchVideo',
        summary: 'Server-Sent Events with live progress; resumes after Last-Event-ID',
        parameters: [idParam, { name: 'Last-Event-ID', in: 'header', required: false, schema: { type: 'string' } }],
        responses: {
          '200': {
            description: 'An event stream: `event` is progress, completed, failed or cancelled; `data` is the Video; `id` its version',
            content: { 'text/event-stream': { schema: { type: 'string' } } },
          },
          ...problems(401, 404, 429),
        },
      },
    },
  };
}

/** Downloads of a clip's files. */
function clipFilePaths(): Record<string, Json> {
  return {
    '/v1/videos/{id}/clips/{clipId}/file': {
      get: {
        operationId: 'downloadClip',
        summary: 'The rendered mp4 of a clip',
        parameters: [idParam, { name: 'clipId', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } }],
        responses: {
          '200': { description: 'The clip', content: { 'video/mp4': { schema: { type: 'string', contentMediaType: 'video/mp4' } } } },
          ...problems(401, 404, 409, 429),
        },
      },
    },
    '/v1/videos/{id}/clips/{clipId}/thumbnail': {
      get: {
        operationId: 'downloadClipThumbnail',
        summary: 'The thumbnail of a clip: the generated image (PNG) when there is one, else the sharpest frame (JPEG)',
        parameters: [idParam, { name: 'clipId', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } }],
        responses: {
          '200': {
            description: 'The thumbnail',
            content: {
              'image/jpeg': { schema: { type: 'string', contentMediaType: 'image/jpeg' } },
              'image/png': { schema: { type: 'string', contentMediaType: 'image/png' } },
            },
          },
          ...problems(401, 404, 409, 429),
        },
      },
    },
    '/v1/videos/{id}/clips/{clipId}/voiceover': {
      get: {
        operationId: 'downloadClipVoiceover',
        summary: 'The generated voice-over (MP3) of a clip',
        parameters: [idParam, { name: 'clipId', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } }],
        responses: {
          '200': { description: 'The voice-over', content: { 'audio/mpeg': { schema: { type: 'string', contentMediaType: 'audio/mpeg' } } } },
          ...problems(401, 404, 409, 429),
        },
      },
    },
  };
}

/** The public job catalogue and its jobs. */
function jobPaths(): Record<string, Json> {
  return {
    '/v1/jobs': {
      get: {
        operationId: 'listPublicJobs',
        summary: 'The public job catalogue: every job other services may submit, with its payload JSON Schema',
        responses: {
          '200': { description: 'The catalogue', content: { 'application/json': { schema: { type: 'object', properties: { items: { type: 'array' } } } } } },
          ...problems(401, 429),
        },
      },
    },
    ...publicJobPaths(),
    '/v1/jobs/{queue}/{id}': {
      get: {
        operationId: 'getJob',
        summary: "State and result of a public job the caller's tenant submitted",
        parameters: [
          { name: 'queue', in: 'path', required: true, schema: { type: 'string' } },
          { name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } },
        ],
        responses: { '200': { description: 'The job', content: json('Job') }, ...problems(401, 404, 429, 503) },
      },
    },
  };
}

/** Operators' key administration and each tenant's webhook secret. */
function tenantPaths(): Record<string, Json> {
  return {
    '/v1/admin/keys': {
      post: {
        operationId: 'createApiKey',
        summary: 'Operators only: a new API key for a tenant (the key is shown once)',
        requestBody: { required: true, content: json('NewApiKey') },
        responses: {
          '201': { description: 'The key', content: { 'application/json': { schema: apiKeySchema(true) } } },
          ...problems(400, 401, 404, 415, 429, 503),
        },
      },
      get: {
        operationId: 'listApiKeys',
        summary: 'Operators only: every key, oldest first, never the key itself',
        responses: {
          '200': {
            description: 'The keys',
            content: { 'application/json': { schema: { type: 'object', properties: { items: { type: 'array', items: apiKeySchema(false) } } } } },
          },
          ...problems(401, 404, 429, 503),
        },
      },
    },
    '/v1/admin/keys/{ref}': {
      delete: {
        operationId: 'revokeApiKey',
        summary: 'Operators only: revoke a key named by its id, its cl_… prefix or the whole key',
        parameters: [{ name: 'ref', in: 'path', required: true, schema: { type: 'string' } }],
        responses: {
          '200': {
            description: 'Revoked',
            content: { 'application/json': { schema: { type: 'object', properties: { outcome: { enum: ['revoked', 'already-revoked'] } } } } },
          },
          ...problems(401, 404, 429, 503),
        },
      },
    },
    '/v1/webhook-secret': {
      get: {
        operationId: 'getWebhookSecret',
        summary: "The tenant's Standard Webhooks signing secret (whsec_…), made on first use",
        responses: { '200': { description: 'The secret', content: { 'application/json': { schema: webhookSecretSchema } } }, ...problems(401, 429, 503) },
      },
    },
    '/v1/webhook-secret:rotate': {
      post: {
        operationId: 'rotateWebhookSecret',
        summary: 'A new signing secret; the previous one keeps signing beside it for 24 hours',
        responses: { '200': { description: 'The new secret', content: { 'application/json': { schema: webhookSecretSchema } } }, ...problems(401, 429, 503) },
      },
    },
  };
}

const queueActionSchema = {
  type: 'object',
  required: ['queue', 'action', 'reasonFilter', 'affected', 'auditId'],
  properties: {
    queue: { type: 'string' },
    action: { enum: ['retry-failed', 'discard-failed', 'pause', 'resume'] },
    reasonFilter: { type: ['string', 'null'], description: 'The reason filter applied; null: every failed job' },
    reasonMatch: {
      enum: ['contains', 'group'],
      description: 'How the filter was matched: a substring of the reason (the API), or its first line exactly (the dashboard’s groups)',
    },
    affected: { type: 'integer', description: 'Jobs retried or discarded (0 for a pause or resume)' },
    auditId: { type: 'string', description: 'The audit row written for the action' },
  },
};

/** Operators' queue actions, each written to the audit. */
function queueOperationPaths(): Record<string, Json> {
  const queueParam = { name: 'queue', in: 'path', required: true, schema: { type: 'string' }, description: 'A queue name, e.g. ingest' };
  const done = { '200': { description: 'Done, with how many jobs it touched', content: { 'application/json': { schema: queueActionSchema } } } };
  const failedAction = (operationId: string, summary: string) => ({
    post: {
      operationId,
      summary,
      parameters: [queueParam],
      requestBody: { required: false, content: json('FailedJobsFilter') },
      responses: { ...done, ...problems(400, 401, 404, 429, 503) },
    },
  });
  const pauseAction = (operationId: string, summary: string) => ({
    post: { operationId, summary, parameters: [queueParam], responses: { ...done, ...problems(401, 404, 429, 503) } },
  });
  return {
    '/v1/admin/queues/{queue}/failed:retry': failedAction(
      'retryFailedJobs',
      'Operators only: retry every failed job of the queue whose failure reason contains `reason` (all when absent), attempts reset',
    ),
    '/v1/admin/queues/{queue}/failed:discard': failedAction(
      'discardFailedJobs',
      'Operators only: remove every failed job of the queue whose failure reason contains `reason` (all when absent)',
    ),
    '/v1/admin/queues/{queue}:pause': pauseAction('pauseQueue', 'Operators only: workers stop taking new jobs of the queue'),
    '/v1/admin/queues/{queue}:resume': pauseAction('resumeQueue', 'Operators only: workers take jobs of the queue again'),
  };
}

/** Registration. */
function userPaths(): Record<string, Json> {
  return {
    '/v1/users': {
      post: {
        operationId: 'registerUser',
        summary: 'Register a user: the password is checked for strength, then hashed in the CPU pool',
        requestBody: { required: true, content: json('UserRegistration') },
        responses: {
          '202': {
            description: 'Registered, pending activation',
            content: { 'application/json': { schema: { type: 'object', properties: { id: { type: 'string' }, status: { type: 'string' } } } } },
          },
          ...problems(400, 401, 409, 415, 429, 503),
        },
      },
    },
    '/v1/users/{id}': {
      get: {
        operationId: 'getUser',
        summary: 'A user (never the password hash)',
        parameters: [idParam],
        responses: { '200': { description: 'The user', content: json('User') }, ...problems(401, 404, 429) },
      },
    },
  };
}

/** Probes, open to all. */
function healthPaths(): Record<string, Json> {
  return {
    '/healthz': { get: { operationId: 'health', security: [], summary: 'Liveness', responses: { '200': { description: 'Alive' } } } },
    '/readyz': {
      get: {
        operationId: 'ready',
        security: [],
        summary: 'Readiness: Redis and the database answer',
        responses: { '200': { description: 'Ready' }, '503': { description: 'Not ready' } },
      },
    },
  };
}

export function openApiDocument(): Json {
  return {
    openapi: '3.1.0',
    info: {
      title: 'clipline API',
      version: '1.0.0',
      description: 'Submit videos, follow their analysis live, and read scenes and clips. Errors are RFC 9457 problem documents.',
    },
    servers: [{ url: '/' }],
    security: [{ bearer: [] }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'An API key' } },
      schemas: componentSchemas(),
    },
    paths: {
      ...videoPaths(),
      ...videoEventPaths(),
      ...clipFilePaths(),
      ...jobPaths(),
      ...tenantPaths(),
      ...queueOperationPaths(),
      ...userPaths(),
      ...healthPaths(),
    },
  };
}
