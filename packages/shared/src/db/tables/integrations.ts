import type { ColumnType, Generated } from 'kysely';
import type { Timestamp } from './core.js';

export type WebhookEvent = 'video.completed' | 'video.failed' | 'video.cancelled';

export interface WebhookDeliveriesTable {
  id: Generated<string>;
  video_id: string;
  event: WebhookEvent;
  url: string;
  state: Generated<'pending' | 'delivered' | 'failed'>;
  attempts: Generated<number>;
  last_status: number | null;
  last_error: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
  delivered_at: Date | null;
  /** The tenant of the video: its secrets sign the delivery. */
  tenant_id: Generated<string>;
  /** The body as first sent, while the delivery is pending (every retry sends it again). */
  body: string | null;
}

export interface WebhookAttemptsTable {
  id: Generated<string>;
  delivery_id: string;
  attempt: number;
  status_code: number | null;
  error: string | null;
  duration_ms: number;
  created_at: Timestamp;
}

export interface TranscriptSegmentRecord {
  startSeconds: number;
  endSeconds: number;
  text: string;
  /** The segment's words with their times, when the transcription gave word timestamps. */
  words?: { startSeconds: number; endSeconds: number; text: string }[];
}

export interface TranscriptsTable {
  video_id: string;
  text: string;
  language: string | null;
  duration_seconds: number | null;
  segments: ColumnType<TranscriptSegmentRecord[], string, string>;
  created_at: Timestamp;
}

export interface ClipExtrasTable {
  clip_id: string;
  video_id: string;
  title: string | null;
  caption: string | null;
  hashtags: ColumnType<string[] | null, string | null, string | null>;
  thumbnail_key: string | null;
  voiceover_key: string | null;
  updated_at: Timestamp;
}

export interface ExternalMetadataTable {
  video_id: string;
  provider: 'youtube';
  external_id: string;
  data: ColumnType<Record<string, unknown>, string, string>;
  fetched_at: Timestamp;
}

/** Tables of external integrations (webhook deliveries, AI results, …). */
export interface IntegrationTables {
  external_metadata: ExternalMetadataTable;
  webhook_deliveries: WebhookDeliveriesTable;
  webhook_attempts: WebhookAttemptsTable;
  transcripts: TranscriptsTable;
  clip_extras: ClipExtrasTable;
}
