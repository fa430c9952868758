/** Tables of external integrations (AI results, webhook deliveries, …). */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface IntegrationTables {}
