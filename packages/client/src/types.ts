/**
 * The request and response bodies of the clipline HTTP API (`/v1`), as the client sees them.
 * They are written out here rather than imported from the server's packages, so that installing
 * the client installs nothing of the server (database drivers, BullMQ). Fields the server adds
 * later are optional here.
 */

export type VideoStatus = 'queued' | 'processing' | 'completed' | 'failed' | 'cancelled';
export type StepStatus = 'pending' | 'active' | 'completed' | 'failed' | 'skipped' | 'cancelled';
export type VideoPriority = 'high' | 'normal' | 'low';

/** How clips are cut; each field has a server-side default. */
export interface VideoOptions {
  /** How many clips to keep (1-20). */
  clipCount?: number;
  minClipSeconds?: number;
  maxClipSeconds?: number;
  aspect?: '9:16' | '1:1' | '16:9';
  /** `burned`: word-timed captions drawn into the clips (needs a transcript). Default `off`. */
  captions?: 'off' | 'burned';
}

/** What ffprobe found in the source. */
export interface VideoMetadata {
  durationSeconds: number;
  width: number;
  height: number;
  fps: number;
  hasAudio: boolean;
  sizeBytes: number;
  videoCodec: string | null;
}

export interface Scene {
  startSeconds: number;
  endSeconds: number;
}

export interface VideoStepView {
  name: string;
  status: StepStatus;
  reason: string | null;
  attempts: number;
  updatedAt: string;
}

/** A video as the server records it; {@link Video} adds links, clips and transcript. */
export interface VideoView {
  id: string;
  /** The tenant that owns the video. */
  tenant: string;
  status: VideoStatus;
  progress: number;
  /** Bumped on every change; the event id of the video's live stream. */
  version: number;
  priority: VideoPriority;
  options: VideoOptions;
  callbackUrl: string | null;
  youtubeId: string | null;
  title: string | null;
  source: string;
  error: string | null;
  createdAt: string;
  updatedAt: string;
  completedAt: string | null;
  metadata: VideoMetadata | null;
  scenes: Scene[];
  steps: VideoStepView[];
}

export type ClipAspect = NonNullable<VideoOptions['aspect']>;

/** `POST /v1/videos` body; also one entry of a batch. */
export interface VideoSubmission {
  /** Absolute local path (as the workers see it), file:// URL or http(s) URL. */
  source: string;
  title?: string | null;
  options?: VideoOptions;
  /** Receives a signed POST when the video completes or fails. */
  callbackUrl?: string;
  /** @defaultValue 'normal' */
  priority?: VideoPriority;
  /** Start processing no sooner than this many seconds from now. */
  delaySeconds?: number;
}

export interface Links {
  self: string;
  events?: string;
}

export interface SubmissionAccepted {
  id: string;
  status: 'queued';
  links: Links;
}

export interface BatchAccepted {
  videos: SubmissionAccepted[];
}

export interface Clip {
  id: string;
  /** Rank of the clip among the video's clips (0 is the best). */
  index: number;
  status: 'pending' | 'rendered' | 'failed';
  startSeconds: number;
  endSeconds: number;
  durationSeconds: number | null;
  score: number;
  reasons: string[];
  aspect: ClipAspect;
  width: number | null;
  height: number | null;
  error: string | null;
  /** Downloads the mp4 (same API key); null until rendered. */
  url: string | null;
  /** Downloads the JPEG thumbnail; null until rendered. */
  thumbnailUrl: string | null;
  // Null (or absent, from older servers) until the clip's text and voice-over were generated.
  title?: string | null;
  caption?: string | null;
  hashtags?: string[] | null;
  /** Downloads the MP3 voice-over. */
  voiceoverUrl?: string | null;
}

export interface TranscriptSegment {
  startSeconds: number;
  endSeconds: number;
  text: string;
}

export interface Transcript {
  text: string;
  language?: string | null;
  segments?: TranscriptSegment[];
}

/**
 * `GET /v1/videos/:id`, and the `data` of every event of its stream: the server's view of a
 * video (status, progress, steps, metadata, scenes) with its links and, once rendered, clips.
 */
export interface Video extends VideoView {
  links: Links;
  clips?: Clip[];
  transcript?: Transcript | null;
}

export interface VideoListQuery {
  status?: VideoStatus;
  /** Page size, 1-100. @defaultValue 20 (server side) */
  limit?: number;
  /** `nextCursor` of the previous page. */
  cursor?: string;
}

export interface VideoPage {
  items: Video[];
  nextCursor: string | null;
}

export interface CancelAccepted {
  id: string;
  status: 'cancelled';
}

export const TERMINAL_VIDEO_STATUSES: readonly VideoStatus[] = ['completed', 'failed', 'cancelled'];

export type VideoEventType = 'progress' | 'completed' | 'failed' | 'cancelled';

/** One event of `GET /v1/videos/:id/events`. */
export interface VideoEvent {
  /** The SSE event id; resuming after it replays nothing already seen. */
  id: string;
  type: VideoEventType;
  video: Video;
}

export interface JobAccepted {
  id: string;
  queue: string;
  name: string;
  status: string;
  links: Links;
}

/** BullMQ's job states, open to ones a later server may report. */
export type JobState = 'waiting' | 'waiting-children' | 'prioritized' | 'delayed' | 'active' | 'completed' | 'failed' | 'unknown' | (string & {});

export interface Job<Result = unknown> {
  id: string;
  queue: string;
  name: string;
  state: JobState;
  progress: unknown;
  returnValue: Result | null;
  failedReason: string | null;
  attemptsMade: number;
  createdAt: string | null;
  finishedAt: string | null;
}

export interface UserRegistration {
  email: string;
  password: string;
  name?: string;
}

export interface RegistrationAccepted {
  id: string;
  status: string;
}

/** `tenant` keys see their tenant's work; `admin` (operator) keys see every tenant's. */
export type ApiKeyRole = 'tenant' | 'admin';

/** `POST /v1/admin/keys` body. */
export interface NewApiKey {
  /** What the key is for (1-100 printable characters). */
  name: string;
  /** The tenant the key acts for. @defaultValue the name, lower-cased with other characters as "-" (server side) */
  tenant?: string;
  /** An operator key, acting on every tenant's work. @defaultValue false */
  admin?: boolean;
}

/** A key just created: `key` is shown only in this answer, the server keeps only its hash. */
export interface CreatedApiKey {
  id: string;
  name: string;
  /** The public start of the key (`cl_…`), safe to show and log. */
  prefix: string;
  key: string;
  tenant: string;
  role: ApiKeyRole;
}

/** One key of `GET /v1/admin/keys`; times are ISO 8601 strings. */
export interface ApiKey {
  id: string;
  name: string;
  prefix: string;
  tenant: string;
  role: ApiKeyRole;
  createdAt: string;
  /** Accurate to a minute (the server records a use at most once a minute). */
  lastUsedAt: string | null;
  revokedAt: string | null;
}

export interface ApiKeyList {
  /** Every key, revoked ones included, oldest first. */
  items: ApiKey[];
}

/** `DELETE /v1/admin/keys/:ref`: revoking twice is harmless. */
export interface ApiKeyRevoked {
  outcome: 'revoked' | 'already-revoked';
}

/** RFC 9457 problem details, as every error of the API is answered. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  errors?: { path: string; message: string }[];
  /** On a 409 to a cancel: the state the video had already reached. */
  videoStatus?: VideoStatus;
}
