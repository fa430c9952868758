/**
 * The request and response bodies of the clipline HTTP API (`/v1`), as the client sees them.
 * Shapes the server takes straight from its records (a video's view, options, metadata) are the
 * shared package's own types, imported as types only: the client loads nothing of it at run
 * time. Fields the server adds later are optional here.
 */
import type { Scene, StepStatus, VideoMetadata, VideoOptions, VideoPriority, VideoStatus, VideoStepView, VideoView } from '@clipline/shared';

export type { Scene, StepStatus, VideoMetadata, VideoOptions, VideoPriority, VideoStatus, VideoStepView };

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

/** RFC 9457 problem details, as every error of the API is answered. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  errors?: { path: string; message: string }[];
}
