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
/** Placeholders the statement is compiled with once; each request's values take their places. */
const SLOTS = { id: '\u0000id', tenant: '\u0000tenant', queue: '\u0000queue', name: '\u0000name', videoId: '\u0000video', scopeTenant: '\u0000scope' } as const;
type Slot = keyof typeof SLOTS;

/** A statement compiled for the database's engine, as `executeQuery` takes it. */
type CompiledQuery = Parameters<Db['executeQuery']>[0];

/** A statement compiled once, and where each value goes among its parameters. */
interface Prepared {
  query: CompiledQuery;
  slots: Slot[];
}

export class PublicJobRecords {
  private readonly timer: QueryTimer | undefined;
  private readonly engine: string;
  /** By scope kind: building and compiling the statement on every request was a tenth of the route's CPU. */
  private readonly prepared: Partial<Record<TenantScope['kind'], Prepared>> = {};

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
      const prepared = this.prepared[scope.kind] ?? this.prepare(scope.kind);
      const values: Record<Slot, unknown> = { ...job, videoId, scopeTenant: scope.kind === 'tenant' ? scope.tenant : undefined };
      const result = await this.db.executeQuery({ ...prepared.query, parameters: prepared.slots.map((slot) => values[slot]) });
      stop?.({ outcome: 'ok' });
      return Number(result.numAffectedRows ?? 0) > 0;
    } catch (error) {
      stop?.({ outcome: 'error' });
      throw error;
    }
  }

  /** INSERT INTO public_jobs (…) SELECT <values> FROM videos WHERE id = … [AND tenant_id = …], compiled for this engine. */
  private prepare(kind: TenantScope['kind']): Prepared {
    const query = this.db
      .insertInto('public_jobs')
      .columns(['id', 'tenant_id', 'queue', 'name'])
      .expression((eb) => {
        const select = eb
          .selectFrom('videos')
          .select([eb.val(SLOTS.id).as('id'), eb.val(SLOTS.tenant).as('tenant_id'), eb.val(SLOTS.queue).as('queue'), eb.val(SLOTS.name).as('name')])
          .where('videos.id', '=', SLOTS.videoId);
        return kind === 'tenant' ? select.where('videos.tenant_id', '=', SLOTS.scopeTenant) : select;
      })
      .compile();
    const bySentinel = new Map(Object.entries(SLOTS).map(([slot, sentinel]) => [sentinel as unknown, slot as Slot]));
    const slots = query.parameters.map((parameter) => {
      const slot = bySentinel.get(parameter);
      if (!slot) throw new Error(`public job record: unexpected parameter ${String(parameter)} in the compiled statement`);
      return slot;
    });
    this.prepared[kind] = { query, slots };
    return { query, slots };
  }
}
