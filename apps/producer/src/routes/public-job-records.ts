import { engineOf, type Db, type Registry, type TenantScope } from '@clipline/shared';

const QUERY_HISTOGRAM = 'clipline_db_query_duration_seconds';

/** A public job's row: its id, the tenant it belongs to, its queue and name. */
export interface PublicJobRow {
  id: string;
  tenant: string;
  queue: string;
  name: string;
}

interface QueryTimer {
  startTimer(labels: Record<string, string>): (labels: Record<string, string>) => void;
}

/**
 * The record of a public job about a video, written only when the video is in the caller's
 * scope: one `INSERT … SELECT … FROM videos WHERE …` statement, where `videos.status` followed by
 * `publicJobs.record` took two round trips to the database on every such request. The outcome is
 * the same: no row (and a 404) for a video that does not exist or is another tenant's, else the
 * job's row. Portable SQL: PostgreSQL, MySQL/MariaDB and SQLite all take INSERT … SELECT. Timed
 * on the repositories' query histogram as `publicJobs.recordForVideo`.
 */
export class PublicJobRecords {
  private readonly timer: QueryTimer | undefined;
  private readonly engine: string;

  constructor(
    private readonly db: Db,
    metrics?: Registry,
  ) {
    this.timer = metrics?.getSingleMetric(QUERY_HISTOGRAM) as QueryTimer | undefined;
    this.engine = engineOf(db);
  }

  /** Records the job for `tenant` when `videoId` is visible in `scope`; false (nothing written) when it is not. */
  async recordForVideo(job: PublicJobRow, videoId: string, scope: TenantScope): Promise<boolean> {
    const stop = this.timer?.startTimer({ query: 'publicJobs.recordForVideo', engine: this.engine });
    try {
      const result = await this.db
        .insertInto('public_jobs')
        .columns(['id', 'tenant_id', 'queue', 'name'])
        .expression((eb) => {
          const query = eb
            .selectFrom('videos')
            .select([eb.val(job.id).as('id'), eb.val(job.tenant).as('tenant_id'), eb.val(job.queue).as('queue'), eb.val(job.name).as('name')])
            .where('videos.id', '=', videoId);
          return scope.kind === 'tenant' ? query.where('videos.tenant_id', '=', scope.tenant) : query;
        })
        .executeTakeFirst();
      stop?.({ outcome: 'ok' });
      return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
    } catch (error) {
      stop?.({ outcome: 'error' });
      throw error;
    }
  }
}
