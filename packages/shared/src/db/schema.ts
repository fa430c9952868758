import type { Insertable, Selectable } from 'kysely';
import type { CoreTables, ScenesTable, VideosTable } from './tables/core.js';

export * from './tables/core.js';

/**
 * Every table, one group per feature; each group's interface lives in `tables/<feature>.ts`
 * beside its migration.
 */
export interface Database extends CoreTables {}

export type VideoRow = Selectable<VideosTable>;
export type NewVideo = Insertable<VideosTable>;
export type SceneRow = Selectable<ScenesTable>;
