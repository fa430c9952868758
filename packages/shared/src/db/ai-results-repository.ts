import type { Db } from './connection.js';
import { portableSql, upsert, type PortableSql } from './portable-sql.js';
import { timeQueries } from './query-timing.js';
import { storableJson, storableText } from '../text.js';
import type { TranscriptSegmentRecord } from './schema.js';

export interface TranscriptView {
  text: string;
  language: string | null;
  durationSeconds: number | null;
  segments: TranscriptSegmentRecord[];
}

export interface ClipExtras {
  clipId: string;
  title: string | null;
  caption: string | null;
  hashtags: string[] | null;
  thumbnailKey: string | null;
  voiceoverKey: string | null;
}

/** Results of the AI steps. Writes are upserts keyed by video or clip, so a retried job writes once. */
export class AiResultsRepository {
  private readonly dialect: PortableSql;

  constructor(private readonly db: Db) {
    this.dialect = portableSql(db);
  }

  async saveTranscript(videoId: string, transcript: TranscriptView): Promise<void> {
    const insert = this.db.insertInto('transcripts').values({
      video_id: videoId,
      text: storableText(transcript.text),
      language: transcript.language,
      duration_seconds: transcript.durationSeconds,
      segments: storableJson(transcript.segments),
    });
    await upsert(insert, this.dialect.engine, ['video_id'], ['text', 'language', 'duration_seconds', 'segments']).execute();
  }

  async transcript(videoId: string): Promise<TranscriptView | undefined> {
    const row = await this.db.selectFrom('transcripts').selectAll().where('video_id', '=', videoId).executeTakeFirst();
    return row && { text: row.text, language: row.language, durationSeconds: row.duration_seconds, segments: row.segments };
  }

  async saveClipExtras(videoId: string, clipId: string, extras: Partial<Omit<ClipExtras, 'clipId'>>): Promise<void> {
    // Only the fields given replace what an earlier step stored; the others stay.
    const given = {
      ...(extras.title !== undefined ? { title: extras.title === null ? null : storableText(extras.title) } : {}),
      ...(extras.caption !== undefined ? { caption: extras.caption === null ? null : storableText(extras.caption) } : {}),
      ...(extras.hashtags !== undefined ? { hashtags: extras.hashtags === null ? null : storableJson(extras.hashtags) } : {}),
      ...(extras.thumbnailKey !== undefined ? { thumbnail_key: extras.thumbnailKey } : {}),
      ...(extras.voiceoverKey !== undefined ? { voiceover_key: extras.voiceoverKey } : {}),
    };
    const insert = this.db
      .insertInto('clip_extras')
      .values({ clip_id: clipId, video_id: videoId, title: null, caption: null, hashtags: null, thumbnail_key: null, voiceover_key: null, ...given });
    const replaced = Object.keys(given) as (keyof typeof given)[];
    await upsert(insert, this.dialect.engine, ['clip_id'], replaced, { updated_at: this.dialect.now() }).execute();
  }

  async clipExtras(videoId: string): Promise<Map<string, ClipExtras>> {
    const rows = await this.db.selectFrom('clip_extras').selectAll().where('video_id', '=', videoId).execute();
    return new Map(
      rows.map((row) => [
        row.clip_id,
        {
          clipId: row.clip_id,
          title: row.title,
          caption: row.caption,
          hashtags: row.hashtags,
          thumbnailKey: row.thumbnail_key,
          voiceoverKey: row.voiceover_key,
        },
      ]),
    );
  }
}

timeQueries(AiResultsRepository, 'aiResults');
