/** Tables of the public API (API keys, idempotency keys, users, …). */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface ApiTables {}
