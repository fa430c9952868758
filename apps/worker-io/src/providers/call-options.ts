export interface CallOptions {
  /** Aborts the request (a job's signal: worker closing, video cancelled); the abort reason is rethrown as is. */
  signal?: AbortSignal;
}
