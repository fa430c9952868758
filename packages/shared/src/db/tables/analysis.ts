import type { ColumnType, Generated } from 'kysely';
import type { Timestamp } from './core.js';

declare module './core.js' {
  interface VideosTable {
    /** SHA-256 (hex) of the stored source; set by analysis, used to reuse a finished analysis. */
    content_sha256: ColumnType<string | null, string | null | undefined, string | null>;
  }
}

/** One sampled frame of a video, as the pool measured it. */
export interface FrameMetricsTable {
  video_id: string;
  frame_index: number;
  time_seconds: number;
  luma: number;
  sharpness: number;
  motion: number;
  content_score: number;
  /** 64-bit dHash as 16 hex digits. */
  dhash: string;
  /** 16-bin normalised luma histogram. */
  histogram: number[];
}

/** Short-term loudness (EBU R128, 3 s window) of a video's first audio stream, one row a video. */
export interface AudioLoudnessTable {
  video_id: string;
  /** Seconds between two values of `short_term_lufs`. */
  step_seconds: number;
  /** Value `i` covers the 3 s window ending at `(i + 1) * step_seconds`. */
  short_term_lufs: number[];
  integrated_lufs: number | null;
  loudness_range_lu: number | null;
}

/**
 * A finished analysis, kept so a later submission of the same bytes with the same settings can
 * reuse it. `result` is the small analysis result (no per-frame data).
 */
export interface AnalysesTable {
  video_id: string;
  content_sha256: string;
  /** Settings the result depends on (sampling, scoring, clip options), as canonical JSON. */
  fingerprint: string;
  result: ColumnType<unknown, string, string>;
  completed_at: Timestamp;
}

export type ClipStatus = 'pending' | 'rendered' | 'failed';
export type ClipAspectValue = '9:16' | '1:1' | '16:9';

/** A clip chosen by highlight scoring, and its rendered files once `render-clip` ran. */
export interface ClipsTable {
  id: Generated<string>;
  video_id: string;
  clip_index: number;
  start_seconds: number;
  end_seconds: number;
  score: number;
  reasons: string[];
  aspect: ClipAspectValue;
  status: ClipStatus;
  storage_key: string | null;
  thumbnail_key: string | null;
  width: number | null;
  height: number | null;
  /** Duration of the rendered file, as ffprobe reads it. */
  duration_seconds: number | null;
  error: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

/** Tables of video analysis and rendering. */
export interface AnalysisTables {
  frame_metrics: FrameMetricsTable;
  audio_loudness: AudioLoudnessTable;
  analyses: AnalysesTable;
  clips: ClipsTable;
}
