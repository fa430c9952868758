import { randomUUID } from 'node:crypto';
import type { Selectable } from 'kysely';
import type { Db } from './connection.js';
import { portableSql, upsert, type PortableSql } from './portable-sql.js';
import { timeQueries } from './query-timing.js';
import type { ClipAspectValue, ClipsTable, ClipStatus } from './schema.js';

const FRAME_METRIC_COLUMNS = 9;
const FRAME_METRIC_UPDATES = ['time_seconds', 'luma', 'sharpness', 'motion', 'content_score', 'dhash', 'histogram'] as const;

/** One sampled frame's metrics, as {@link AnalysisRepository.saveFrameMetrics} stores them. */
export interface FrameMetricRecord {
  frameIndex: number;
  timeSeconds: number;
  luma: number;
  sharpness: number;
  motion: number;
  contentScore: number;
  dhash: string;
  histogram: readonly number[];
}

export interface AudioLoudnessRecord {
  stepSeconds: number;
  shortTermLufs: readonly number[];
  integratedLufs: number | null;
  loudnessRangeLu: number | null;
}

/** A clip's row: what scoring chose, plus the rendered files once there are any. */
export interface ClipRecord {
  videoId: string;
  clipIndex: number;
  startSeconds: number;
  endSeconds: number;
  score: number;
  reasons: readonly string[];
  aspect: ClipAspectValue;
  status: ClipStatus;
  storageKey?: string | null;
  thumbnailKey?: string | null;
  width?: number | null;
  height?: number | null;
  durationSeconds?: number | null;
  error?: string | null;
}

export interface ClipView {
  id: string;
  videoId: string;
  clipIndex: number;
  startSeconds: number;
  endSeconds: number;
  score: number;
  reasons: string[];
  aspect: ClipAspectValue;
  status: ClipStatus;
  storageKey: string | null;
  thumbnailKey: string | null;
  width: number | null;
  height: number | null;
  durationSeconds: number | null;
  error: string | null;
  updatedAt: string;
}

export interface CompletedAnalysis<R = unknown> {
  videoId: string;
  result: R;
  completedAt: string;
}

export interface AnalysisRepositoryOptions {
  /**
   * Rows per multi-row INSERT. Capped so that rows × columns stays below the engine's limit of
   * bind parameters (65535 on PostgreSQL and MySQL, 32766 on SQLite). @defaultValue 5000
   */
  rowsPerInsert?: number;
}

/**
 * Reads and writes of analysis results: per-frame metrics, loudness, finished analyses (for
 * reuse by content hash) and clips. Every write is idempotent: retried jobs overwrite rows keyed
 * by (video, frame) or (video, clip), never add copies.
 */
export class AnalysisRepository {
  /** Rows per multi-row INSERT of frame metrics. */
  readonly rowsPerInsert: number;
  private readonly dialect: PortableSql;

  constructor(
    private readonly db: Db,
    options: AnalysisRepositoryOptions = {},
  ) {
    this.dialect = portableSql(db);
    const ceiling = Math.floor(this.dialect.maxParameters / FRAME_METRIC_COLUMNS);
    this.rowsPerInsert = Math.max(1, Math.min(options.rowsPerInsert ?? 5000, ceiling));
  }

  /**
   * Upserts frame metrics with multi-row INSERTs, each below the bind-parameter limit. Returns
   * the number of statements sent.
   */
  async saveFrameMetrics(videoId: string, frames: readonly FrameMetricRecord[]): Promise<number> {
    let statements = 0;
    for (let from = 0; from < frames.length; from += this.rowsPerInsert) {
      const chunk = frames.slice(from, from + this.rowsPerInsert);
      const insert = this.db.insertInto('frame_metrics').values(
        chunk.map((frame) => ({
          video_id: videoId,
          frame_index: frame.frameIndex,
          time_seconds: frame.timeSeconds,
          luma: frame.luma,
          sharpness: frame.sharpness,
          motion: frame.motion,
          content_score: frame.contentScore,
          dhash: frame.dhash,
          histogram: [...frame.histogram],
        })),
      );
      await upsert(insert, this.dialect.engine, ['video_id', 'frame_index'], FRAME_METRIC_UPDATES).execute();
      statements++;
    }
    return statements;
  }

  /** Drops frames at or past `frameCount`, left behind by an earlier attempt that sampled more. */
  async trimFrameMetrics(videoId: string, frameCount: number): Promise<void> {
    await this.db.deleteFrom('frame_metrics').where('video_id', '=', videoId).where('frame_index', '>=', frameCount).execute();
  }

  async countFrameMetrics(videoId: string): Promise<number> {
    const row = await this.db
      .selectFrom('frame_metrics')
      .select((eb) => eb.fn.countAll<number>().as('count'))
      .where('video_id', '=', videoId)
      .executeTakeFirstOrThrow();
    return Number(row.count);
  }

  /** Frame metrics in frame order, `limit` from `fromIndex` on. */
  async listFrameMetrics(videoId: string, fromIndex = 0, limit = 10_000): Promise<FrameMetricRecord[]> {
    const rows = await this.db
      .selectFrom('frame_metrics')
      .selectAll()
      .where('video_id', '=', videoId)
      .where('frame_index', '>=', fromIndex)
      .orderBy('frame_index')
      .limit(limit)
      .execute();
    return rows.map((row) => ({
      frameIndex: row.frame_index,
      timeSeconds: row.time_seconds,
      luma: row.luma,
      sharpness: row.sharpness,
      motion: row.motion,
      contentScore: row.content_score,
      dhash: row.dhash,
      histogram: row.histogram,
    }));
  }

  async saveAudioLoudness(videoId: string, loudness: AudioLoudnessRecord): Promise<void> {
    const insert = this.db.insertInto('audio_loudness').values({
      video_id: videoId,
      step_seconds: loudness.stepSeconds,
      short_term_lufs: [...loudness.shortTermLufs],
      integrated_lufs: loudness.integratedLufs,
      loudness_range_lu: loudness.loudnessRangeLu,
    });
    await upsert(insert, this.dialect.engine, ['video_id'], ['step_seconds', 'short_term_lufs', 'integrated_lufs', 'loudness_range_lu']).execute();
  }

  async findAudioLoudness(videoId: string): Promise<AudioLoudnessRecord | undefined> {
    const row = await this.db.selectFrom('audio_loudness').selectAll().where('video_id', '=', videoId).executeTakeFirst();
    if (!row) return undefined;
    return {
      stepSeconds: row.step_seconds,
      shortTermLufs: row.short_term_lufs,
      integratedLufs: row.integrated_lufs,
      loudnessRangeLu: row.loudness_range_lu,
    };
  }

  async setContentHash(videoId: string, sha256: string): Promise<void> {
    await this.db.updateTable('videos').set({ content_sha256: sha256 }).where('id', '=', videoId).execute();
  }

  /** Records a finished analysis; a retry replaces the earlier record of the same video. */
  async saveCompletedAnalysis(videoId: string, sha256: string, fingerprint: string, result: unknown): Promise<void> {
    const insert = this.db
      .insertInto('analyses')
      .values({ video_id: videoId, content_sha256: sha256, fingerprint, result: JSON.stringify(result), completed_at: this.dialect.now() });
    await upsert(insert, this.dialect.engine, ['video_id'], ['content_sha256', 'fingerprint', 'result', 'completed_at']).execute();
  }

  /**
   * The earliest finished analysis of the same bytes made with the same settings, or undefined.
   * `exceptVideoId` leaves out the video asking, so it never "reuses" itself.
   */
  async findCompletedAnalysisByHash<R = unknown>(sha256: string, fingerprint: string, exceptVideoId?: string): Promise<CompletedAnalysis<R> | undefined> {
    let query = this.db
      .selectFrom('analyses')
      .select(['video_id', 'result', 'completed_at'])
      .where('content_sha256', '=', sha256)
      .where('fingerprint', '=', fingerprint);
    if (exceptVideoId) query = query.where('video_id', '<>', exceptVideoId);
    const row = await query.orderBy('completed_at').limit(1).executeTakeFirst();
    if (!row) return undefined;
    return { videoId: row.video_id, result: row.result as R, completedAt: row.completed_at.toISOString() };
  }

  /**
   * Copies the per-frame metrics and loudness of one video to another inside the database, so a
   * reused analysis leaves the same rows as a fresh one without moving them through Node.
   * Returns the frames copied: none when the earlier video was purged meanwhile.
   */
  async copyAnalysisRows(fromVideoId: string, toVideoId: string): Promise<number> {
    return this.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('frame_metrics').where('video_id', '=', toVideoId).execute();
      const frames = await trx
        .insertInto('frame_metrics')
        .columns(['video_id', 'frame_index', 'time_seconds', 'luma', 'sharpness', 'motion', 'content_score', 'dhash', 'histogram'])
        .expression((eb) =>
          eb
            .selectFrom('frame_metrics')
            .select([
              this.dialect.uuid(toVideoId).as('video_id'),
              'frame_index',
              'time_seconds',
              'luma',
              'sharpness',
              'motion',
              'content_score',
              'dhash',
              'histogram',
            ])
            .where('video_id', '=', fromVideoId),
        )
        .executeTakeFirst();
      await trx.deleteFrom('audio_loudness').where('video_id', '=', toVideoId).execute();
      await trx
        .insertInto('audio_loudness')
        .columns(['video_id', 'step_seconds', 'short_term_lufs', 'integrated_lufs', 'loudness_range_lu'])
        .expression((eb) =>
          eb
            .selectFrom('audio_loudness')
            .select([this.dialect.uuid(toVideoId).as('video_id'), 'step_seconds', 'short_term_lufs', 'integrated_lufs', 'loudness_range_lu'])
            .where('video_id', '=', fromVideoId),
        )
        .execute();
      return Number(frames.numInsertedOrUpdatedRows ?? 0);
    });
  }

  /** Inserts or replaces the clip (video, clip index); its id stays the same across upserts. */
  async upsertClip(clip: ClipRecord): Promise<ClipView> {
    const insert = this.db.insertInto('clips').values({
      id: randomUUID(),
      video_id: clip.videoId,
      clip_index: clip.clipIndex,
      start_seconds: clip.startSeconds,
      end_seconds: clip.endSeconds,
      score: clip.score,
      reasons: [...clip.reasons],
      aspect: clip.aspect,
      status: clip.status,
      storage_key: clip.storageKey ?? null,
      thumbnail_key: clip.thumbnailKey ?? null,
      width: clip.width ?? null,
      height: clip.height ?? null,
      duration_seconds: clip.durationSeconds ?? null,
      error: clip.error ?? null,
    });
    await upsert(
      insert,
      this.dialect.engine,
      ['video_id', 'clip_index'],
      ['start_seconds', 'end_seconds', 'score', 'reasons', 'aspect', 'status', 'storage_key', 'thumbnail_key', 'width', 'height', 'duration_seconds', 'error'],
      { updated_at: this.dialect.now() },
    ).execute();
    // Read back rather than RETURNING, which MySQL lacks: the row as it now stands, old id included.
    const row = await this.db
      .selectFrom('clips')
      .selectAll()
      .where('video_id', '=', clip.videoId)
      .where('clip_index', '=', clip.clipIndex)
      .executeTakeFirstOrThrow();
    return clipView(row);
  }

  /** Marks a clip failed, keeping what scoring chose; a clip never rendered gets a row too. */
  async failClip(clip: Omit<ClipRecord, 'status' | 'error'>, reason: string): Promise<void> {
    await this.upsertClip({ ...clip, status: 'failed', error: reason, storageKey: null, thumbnailKey: null });
  }

  async listClips(videoId: string): Promise<ClipView[]> {
    const rows = await this.db.selectFrom('clips').selectAll().where('video_id', '=', videoId).orderBy('clip_index').execute();
    return rows.map(clipView);
  }

  async findClip(clipId: string): Promise<ClipView | undefined> {
    const row = await this.db.selectFrom('clips').selectAll().where('id', '=', clipId).executeTakeFirst();
    return row ? clipView(row) : undefined;
  }

  /** Where the video's stored source is, once ingest has put it there. */
  async findSourceKey(videoId: string): Promise<string | null | undefined> {
    const row = await this.db.selectFrom('videos').select('storage_key').where('id', '=', videoId).executeTakeFirst();
    return row?.storage_key;
  }
}

timeQueries(AnalysisRepository, 'analysis');

function clipView(row: Selectable<ClipsTable>): ClipView {
  return {
    id: row.id,
    videoId: row.video_id,
    clipIndex: row.clip_index,
    startSeconds: row.start_seconds,
    endSeconds: row.end_seconds,
    score: row.score,
    reasons: row.reasons,
    aspect: row.aspect,
    status: row.status,
    storageKey: row.storage_key,
    thumbnailKey: row.thumbnail_key,
    width: row.width,
    height: row.height,
    durationSeconds: row.duration_seconds,
    error: row.error,
    updatedAt: row.updated_at.toISOString(),
  };
}
