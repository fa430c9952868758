import type { Insertable, Selectable } from 'kysely';
import type { AnalysisTables } from './tables/analysis.js';
import type { ApiTables } from './tables/api.js';
import type { CoreTables, ScenesTable, VideosTable } from './tables/core.js';
import type { IntegrationTables } from './tables/integrations.js';
import type { OperationTables } from './tables/operations.js';

export * from './tables/analysis.js';
export * from './tables/api.js';
export * from './tables/core.js';
export * from './tables/integrations.js';
export * from './tables/operations.js';

/**
 * Every table, one group per feature; each group's interface lives in `tables/<feature>.ts`
 * beside its migration.
 */
export interface Database extends CoreTables, AnalysisTables, ApiTables, IntegrationTables, OperationTables {}

export type VideoRow = Selectable<VideosTable>;
export type NewVideo = Insertable<VideosTable>;
export type SceneRow = Selectable<ScenesTable>;
