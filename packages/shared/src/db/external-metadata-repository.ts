import { sql } from 'kysely';
import type { Db } from './connection.js';
import { portableSql, upsert, type PortableSql } from './portable-sql.js';
import { timeQueries } from './query-timing.js';
import { storableJson } from '../text.js';

export interface ExternalMetadataView {
  provider: 'youtube';
  externalId: string;
  data: Record<string, unknown>;
  fetchedAt: string;
}

/** Metadata of videos' external counterparts (YouTube), refreshed by the sync schedule. */
export class ExternalMetadataRepository {
  private readonly dialect: PortableSql;

  constructor(private readonly db: Db) {
    this.dialect = portableSql(db);
  }

  async save(videoId: string, provider: 'youtube', externalId: string, data: Record<string, unknown>): Promise<void> {
    const insert = this.db
      .insertInto('external_metadata')
      .values({ video_id: videoId, provider, external_id: externalId, data: storableJson(data), fetched_at: this.dialect.now() });
    await upsert(insert, this.dialect.engine, ['video_id'], ['provider', 'external_id', 'data', 'fetched_at']).execute();
  }

  async find(videoId: string): Promise<ExternalMetadataView | undefined> {
    const row = await this.db.selectFrom('external_metadata').selectAll().where('video_id', '=', videoId).executeTakeFirst();
    return row && { provider: row.provider, externalId: row.external_id, data: row.data, fetchedAt: row.fetched_at.toISOString() };
  }

  async youtubeIdOf(videoId: string): Promise<string | null> {
    const row = await this.db.selectFrom('videos').select('youtube_id').where('id', '=', videoId).executeTakeFirst();
    return row?.youtube_id ?? null;
  }

  /** Tracked videos whose metadata is oldest (never fetched first), for the sync schedule. */
  async dueForRefresh(olderThanSeconds: number, limit: number): Promise<string[]> {
    const rows = await this.db
      .selectFrom('videos')
      .leftJoin('external_metadata', 'external_metadata.video_id', 'videos.id')
      .select('videos.id')
      .where('videos.youtube_id', 'is not', null)
      // A failed or cancelled video has no use for fresh metadata: its refreshes would spend quota.
      .where('videos.status', 'not in', ['failed', 'cancelled'])
      .where((eb) =>
        eb.or([eb('external_metadata.fetched_at', 'is', null), eb('external_metadata.fetched_at', '<', this.dialect.secondsAgo(olderThanSeconds))]),
      )
      // Never fetched first: "is not null" is false (0) for them on every engine.
      .orderBy(sql`external_metadata.fetched_at is not null`)
      .orderBy('external_metadata.fetched_at')
      .limit(limit)
      .execute();
    return rows.map((row) => row.id);
  }
}

timeQueries(ExternalMetadataRepository, 'externalMetadata');
