import type { ColumnType, Generated } from 'kysely';

export type VideoStatus = 'queued' | 'processing' | 'completed' | 'failed' | 'cancelled';
export type StepStatus = 'pending' | 'active' | 'completed' | 'failed' | 'skipped' | 'cancelled';

export type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;

export interface VideosTable {
  id: string;
  status: VideoStatus;
  progress: Generated<number>;
  title: string | null;
  source: string;
  error: string | null;
  storage_key: string | null;
  size_bytes: number | null;
  duration_seconds: number | null;
  width: number | null;
  height: number | null;
  fps: number | null;
  has_audio: boolean | null;
  video_codec: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
  completed_at: Date | null;
  /** Submission options (clip count, lengths, aspect) as the API accepted them. */
  options: ColumnType<VideoOptions, VideoOptions | string | undefined, VideoOptions | string>;
  callback_url: string | null;
  priority: Generated<VideoPriority>;
  /** Which API key submitted the video (for fair share). */
  submitted_by: string | null;
  /** The tenant that owns the video: every read, list, stream, cancel and download is scoped to it. */
  tenant_id: string;
  /** Bumped on every change: the ids of the video's live event stream. */
  version: Generated<number>;
  /** The same video on YouTube, whose metadata is fetched and kept fresh. */
  youtube_id: string | null;
}

export type VideoPriority = 'high' | 'normal' | 'low';

export interface VideoOptions {
  clipCount?: number;
  minClipSeconds?: number;
  maxClipSeconds?: number;
  aspect?: '9:16' | '1:1' | '16:9';
  captions?: 'off' | 'burned';
}

export interface IdempotencyKeysTable {
  principal: string;
  key: string;
  request_hash: string;
  state: 'in_progress' | 'completed';
  response_status: number | null;
  response_body: unknown;
  created_at: Timestamp;
  expires_at: Date | string;
  /** The token of the claim that holds the key (see `IdempotencyRepository#claim`); null on keys claimed before tokens. */
  claim_token: string | null;
  /** The stored answer's `Location` header, when it had one. */
  response_location: string | null;
}

export interface VideoStepsTable {
  video_id: string;
  step: string;
  status: StepStatus;
  reason: string | null;
  attempts: Generated<number>;
  updated_at: Timestamp;
}

export interface ScenesTable {
  video_id: string;
  scene_index: number;
  start_seconds: number;
  end_seconds: number;
}

export interface JobEventsTable {
  id: Generated<string>;
  video_id: string | null;
  queue: string;
  job_name: string;
  job_id: string;
  step: string | null;
  status: string;
  attempt: number;
  reason: string | null;
  created_at: Timestamp;
}

/** Tables of the video pipeline's core: videos, their steps and scenes, and the job audit. */
export interface CoreTables {
  videos: VideosTable;
  video_steps: VideoStepsTable;
  scenes: ScenesTable;
  job_events: JobEventsTable;
  idempotency_keys: IdempotencyKeysTable;
}
