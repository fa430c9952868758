import { sql } from 'kysely';
import type { Db } from './connection.js';

export interface ExternalMetadataView {
  provider: 'youtube';
  externalId: string;
  data: Record<string, unknown>;
  fetchedAt: string;
}

/** Metadata of videos' external counterparts (YouTube), refreshed by the sync schedule. */
export class ExternalMetadataRepository {
  constructor(private readonly db: Db) {}

  async save(videoId: string, provider: 'youtube', externalId: string, data: Record<string, unknown>): Promise<void> {
    const values = { provider, external_id: externalId, data: JSON.stringify(data), fetched_at: sql<Date>`now()` };
    await this.db
      .insertInto('external_metadata')
      .values({ video_id: videoId, ...values })
      .onConflict((oc) => oc.column('video_id').doUpdateSet(values))
      .execute();
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
      .where((eb) =>
        eb.or([eb('external_metadata.fetched_at', 'is', null), eb('external_metadata.fetched_at', '<', sql<Date>`now() - make_interval(secs => ${olderThanSeconds})`)]),
      )
      .orderBy(sql`external_metadata.fetched_at asc nulls first`)
      .limit(limit)
      .execute();
    return rows.map((row) => row.id);
  }
}
