import { engineOf, type Db, isUniqueViolation, type Registry, type TenantScope, withRetries } from '@clipline/shared';

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

/** Placeholders a statement is compiled with once; each row's values take their places. */
const SLOTS = { id: '\u0000id', tenant: '\u0000tenant', queue: '\u0000queue', name: '\u0000name', videoId: '\u0000video', scopeTenant: '\u0000scope' } as const;
type Slot = keyof typeof SLOTS;

/** A statement compiled for the database's engine, as `executeQuery` takes it. */
type CompiledQuery = Parameters<Db['executeQuery']>[0];

/** A statement compiled once, and where each value goes among its parameters: (row, slot) pairs. */
interface Prepared {
  query: CompiledQuery;
  places: Array<[number, Slot]>;
}

/** A row waiting for its statement, and the request waiting for its outcome. */
interface Pending {
  values: Record<Slot, unknown>;
  resolve(recorded: boolean): void;
  reject(error: unknown): void;
}

export interface PublicJobRecordsOptions {
  /** Rows one statement writes at most. */
  maxBatch?: number;
  /** Statements in flight at once; rows arriving meanwhile wait for the next one. */
  maxInFlight?: number;
}

/** Compiled statements kept, by scope kind and row count. */
const MAX_PREPARED = 256;

/**
 * The record of a public job about a video, written only when the video is in the caller's
 * scope, with `INSERT … SELECT … FROM videos WHERE …`: no row (and a 404) for a video that does
 * not exist or is another tenant's, else the job's row.
 *
 * Rows of concurrent requests are written together (group commit): the rows that arrive while
 * a statement is in flight, or in the same turn of the event loop, go out as one
 * `INSERT … SELECT … UNION ALL SELECT …` statement. Each request still waits for its own row to be
 * committed before it enqueues the job and answers, as with one statement a request; what changes
 * is that 50 concurrent requests cost the database a few statements instead of 50, which was most
 * of the public job route's CPU (docs/PERFORMANCE.md). When fewer rows were written than sent,
 * one more query reads which ids exist (ids are fresh UUIDs, so that is exact), tried again
 * through a blink of the database. When a statement of several rows fails, each of its rows is
 * tried alone, so one request's failure is its own.
 * Portable SQL: PostgreSQL, MySQL/MariaDB and SQLite all take INSERT … SELECT … UNION ALL. Each
 * statement is timed on the repositories' query histogram as `publicJobs.recordForVideo`.
 */
export class PublicJobRecords {
  private readonly timer: QueryTimer | undefined;
  private readonly engine: string;
  private readonly maxBatch: number;
  private readonly maxInFlight: number;
  /** By scope kind and row count: building and compiling a statement on every request was a tenth of the route's CPU. */
  private readonly prepared = new Map<string, Prepared>();
  private waiting: Pending[] = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(
    private readonly db: Db,
    metrics?: Registry,
    options: PublicJobRecordsOptions = {},
  ) {
    this.timer = metrics?.getSingleMetric(QUERY_HISTOGRAM) as QueryTimer | undefined;
    this.engine = engineOf(db);
    this.maxBatch = Math.max(1, options.maxBatch ?? 100);
    this.maxInFlight = Math.max(1, options.maxInFlight ?? 2);
  }

  /** Records the job for `tenant` when `videoId` is visible in `scope`; false (nothing written) when it is not. */
  recordForVideo(job: PublicJobRow, videoId: string, scope: TenantScope): Promise<boolean> {
    const values: Record<Slot, unknown> = { ...job, videoId, scopeTenant: scope.kind === 'tenant' ? scope.tenant : undefined };
    return new Promise<boolean>((resolve, reject) => {
      this.waiting.push({ values, resolve, reject });
      this.schedule();
    });
  }

  /** Sends what waits at the end of this turn of the event loop, when a statement may go out. */
  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.maxInFlight || this.waiting.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      while (this.inFlight < this.maxInFlight && this.waiting.length > 0) {
        const batch = this.waiting.length <= this.maxBatch ? this.waiting : this.waiting.slice(0, this.maxBatch);
        this.waiting = batch === this.waiting ? [] : this.waiting.slice(batch.length);
        this.inFlight += 1;
        void this.settle(batch).finally(() => {
          this.inFlight -= 1;
          this.schedule();
        });
      }
    });
  }

  /** Writes a batch, one statement per scope kind, and answers each of its requests. */
  private async settle(batch: Pending[]): Promise<void> {
    const tenantRows = batch.filter((row) => row.values.scopeTenant !== undefined);
    const anyRows = tenantRows.length === batch.length ? [] : batch.filter((row) => row.values.scopeTenant === undefined);
    await Promise.all([tenantRows, anyRows].filter((rows) => rows.length > 0).map((rows) => this.settleKind(rows)));
  }

  private async settleKind(rows: Pending[]): Promise<void> {
    let affected: number;
    try {
      affected = await this.write(rows);
    } catch (error) {
      if (rows.length === 1) {
        // Its id is a fresh UUID: taken means a statement of ours that failed only on its way
        // back (the connection lost after the commit) had written it.
        if (isUniqueViolation(error)) rows[0]?.resolve(true);
        else rows[0]?.reject(error);
        return;
      }
      await Promise.all(rows.map((row) => this.settleKind([row])));
      return;
    }
    if (affected >= rows.length) {
      for (const row of rows) row.resolve(true);
      return;
    }
    // The statement committed: which rows it wrote is read, not written again (a row tried
    // alone after its first write would clash with itself). Read through a blink of the database.
    const ids = rows.map((row) => row.values.id as string);
    try {
      const written = await withRetries(() => this.existing(ids), { attempts: 3, firstDelayMs: 50 });
      for (const row of rows) row.resolve(written.has(row.values.id as string));
    } catch (error) {
      // Unknown which were written: none of them should stay recorded without its job, which is
      // not enqueued for a request answered with an error. Best effort: with the database still
      // away this fails too, and such a record names a job that does not exist (its GET is a 404).
      await this.db
        .deleteFrom('public_jobs')
        .where('id', 'in', ids)
        .execute()
        .catch(() => {});
      for (const row of rows) row.reject(error);
    }
  }

  /** One statement for rows of one scope kind; resolves to the number of rows it wrote. */
  private async write(rows: Pending[]): Promise<number> {
    const kind: TenantScope['kind'] = rows[0]?.values.scopeTenant === undefined ? 'any' : 'tenant';
    const stop = this.timer?.startTimer({ query: 'publicJobs.recordForVideo', engine: this.engine });
    try {
      const prepared = this.statement(kind, rows.length);
      const parameters = prepared.places.map(([row, slot]) => rows[row]?.values[slot]);
      const result = await this.db.executeQuery({ ...prepared.query, parameters });
      stop?.({ outcome: 'ok' });
      return Number(result.numAffectedRows ?? 0);
    } catch (error) {
      stop?.({ outcome: 'error' });
      throw error;
    }
  }

  /** Which of `ids` are recorded. */
  protected async existing(ids: string[]): Promise<Set<string>> {
    const found = await this.db.selectFrom('public_jobs').select('id').where('id', 'in', ids).execute();
    return new Set(found.map((row) => row.id));
  }

  /** INSERT INTO public_jobs (…) SELECT <row 0> FROM videos WHERE … UNION ALL SELECT <row 1> …, compiled for this engine. */
  private statement(kind: TenantScope['kind'], count: number): Prepared {
    const key = `${kind}:${count}`;
    const known = this.prepared.get(key);
    if (known) return known;
    const sentinel = (slot: Slot, row: number) => `${SLOTS[slot]}:${row}`;
    const query = this.db
      .insertInto('public_jobs')
      .columns(['id', 'tenant_id', 'queue', 'name'])
      .expression((eb) => {
        const selectRow = (row: number) => {
          const select = eb
            .selectFrom('videos')
            .select([
              eb.val(sentinel('id', row)).as('id'),
              eb.val(sentinel('tenant', row)).as('tenant_id'),
              eb.val(sentinel('queue', row)).as('queue'),
              eb.val(sentinel('name', row)).as('name'),
            ])
            .where('videos.id', '=', sentinel('videoId', row));
          return kind === 'tenant' ? select.where('videos.tenant_id', '=', sentinel('scopeTenant', row)) : select;
        };
        let union = selectRow(0);
        for (let row = 1; row < count; row += 1) union = union.unionAll(selectRow(row));
        return union;
      })
      .compile();
    const bySentinel = new Map<unknown, [number, Slot]>();
    for (let row = 0; row < count; row += 1) for (const slot of Object.keys(SLOTS) as Slot[]) bySentinel.set(sentinel(slot, row), [row, slot]);
    const places = query.parameters.map((parameter) => {
      const place = bySentinel.get(parameter);
      if (!place) throw new Error(`public job record: unexpected parameter ${String(parameter)} in the compiled statement`);
      return place;
    });
    const prepared = { query, places };
    if (this.prepared.size >= MAX_PREPARED) this.prepared.clear();
    this.prepared.set(key, prepared);
    return prepared;
  }
}
