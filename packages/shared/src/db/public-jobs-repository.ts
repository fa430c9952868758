import type { Db } from './connection.js';
import { deleteInBatches } from './batched-delete.js';
import { ignoreDuplicates, portableSql, type PortableSql } from './portable-sql.js';
import { timeQueries } from './query-timing.js';
import type { TenantScope } from '../tenancy.js';

/** Seconds a public job's record is kept: longer than BullMQ keeps any job (a failed one, a week). */
export const PUBLIC_JOB_RECORD_SECONDS = 8 * 24 * 3600;

/**
 * Jobs submitted through `POST /v1/jobs` and the tenant each belongs to: BullMQ keeps a job's
 * payload, not its owner, so reading a job back checks ownership here first.
 */
export class PublicJobsRepository {
  private readonly dialect: PortableSql;

  constructor(private readonly db: Db) {
    this.dialect = portableSql(db);
  }

  /** Records the job before it is enqueued; recording the same id again is a no-op. */
  async record(job: { id: string; tenant: string; queue: string; name: string }): Promise<void> {
    await ignoreDuplicates(
      this.db.insertInto('public_jobs').values({ id: job.id, tenant_id: job.tenant, queue: job.queue, name: job.name }),
      this.dialect.engine,
      ['id'],
    ).execute();
  }

  /** Whether the job exists in `scope` (and in that queue). */
  async visible(id: string, queue: string, scope: TenantScope): Promise<boolean> {
    let query = this.db.selectFrom('public_jobs').select('id').where('id', '=', id).where('queue', '=', queue);
    if (scope.kind === 'tenant') query = query.where('tenant_id', '=', scope.tenant);
    return (await query.executeTakeFirst()) !== undefined;
  }

  /**
   * Deletes the records older than `keepSeconds` (by then BullMQ has removed their jobs: a failed
   * one is kept a week), in batches of `batch`, at most `batches` a call, so a table never purged
   * before does not meet the statement timeout. Returns how many went.
   */
  async purgeExpired(keepSeconds = PUBLIC_JOB_RECORD_SECONDS, batch = 1000, batches = 20): Promise<number> {
    return deleteInBatches(
      async (limit) => {
        const expired = await this.db
          .selectFrom('public_jobs')
          .select('id')
          .where('created_at', '<', this.dialect.secondsAgo(keepSeconds))
          .limit(limit)
          .execute();
        if (expired.length === 0) return { selected: 0, deleted: 0 };
        const ids = expired.map((row) => row.id);
        const result = await this.db.deleteFrom('public_jobs').where('id', 'in', ids).executeTakeFirst();
        return { selected: expired.length, deleted: Number(result.numDeletedRows) };
      },
      batch,
      batches,
    );
  }

  async remove(id: string): Promise<void> {
    await this.db.deleteFrom('public_jobs').where('id', '=', id).execute();
  }
}

timeQueries(PublicJobsRepository, 'publicJobs');
