import {
  OperationNodeTransformer,
  type KyselyPlugin,
  type PluginTransformQueryArgs,
  type PluginTransformResultArgs,
  type PrimitiveValueListNode,
  type QueryResult,
  type RootOperationNode,
  type UnknownRow,
  type ValueNode,
} from 'kysely';

/**
 * PostgreSQL has column types for times, JSON, arrays and booleans, and pg takes and returns
 * them as Dates, JSON, arrays and booleans. MySQL/MariaDB and SQLite store some of them in a
 * plainer form (SQLite times as ISO-8601 text, JSON and arrays as text, booleans as 0/1), so
 * values bound for them are encoded into that form, and rows read from them are decoded by
 * column name into what pg would have returned: the repositories see one shape whatever the
 * engine. Column names are unique in meaning across
 * the schema; a test checks these lists against the PostgreSQL column types.
 */
export const STORED_VALUE_COLUMNS = {
  timestamp: [
    'created_at',
    'updated_at',
    'completed_at',
    'revoked_at',
    'last_used_at',
    'activated_at',
    'welcomed_at',
    'expires_at',
    'fetched_at',
    'delivered_at',
    'finished_at',
  ],
  json: ['options', 'response_body', 'result', 'segments', 'hashtags', 'data', 'histogram', 'short_term_lufs', 'reasons'],
  boolean: ['has_audio'],
} as const;

type StoredKind = keyof typeof STORED_VALUE_COLUMNS;

const KIND_OF_COLUMN = new Map<string, StoredKind>(
  (Object.entries(STORED_VALUE_COLUMNS) as [StoredKind, readonly string[]][]).flatMap(([kind, columns]) => columns.map((column) => [column, kind] as const)),
);

/** A time as SQLite or a MySQL string returns it; text without a zone is UTC, as it was written. */
function parseStoredTime(text: string): Date {
  const iso = text.includes('T') ? text : text.replace(' ', 'T');
  return new Date(/(Z|[+-]\d\d:?\d\d)$/i.test(iso) ? iso : `${iso}Z`);
}

export function decodeStoredValue(column: string, value: unknown): unknown {
  switch (KIND_OF_COLUMN.get(column)) {
    case 'timestamp':
      return typeof value === 'string' ? parseStoredTime(value) : value;
    case 'json':
      return typeof value === 'string' ? JSON.parse(value) : value;
    case 'boolean':
      return typeof value === 'number' || typeof value === 'bigint' ? value !== 0 && value !== 0n : value;
    default:
      return value;
  }
}

export type PlainerEngine = 'mysql' | 'sqlite';

/**
 * A bound value in the form the engine stores: arrays and objects as JSON text (mysql2 would
 * expand an array into a list, better-sqlite3 refuses it); on SQLite also dates as ISO-8601 text
 * in UTC, which sorts in time order, and booleans as 0/1. Buffers stay binary.
 */
export function encodeStoredValue(engine: PlainerEngine, value: unknown): unknown {
  if (value === null || value === undefined || value instanceof Uint8Array) return value ?? null;
  if (value instanceof Date) return engine === 'sqlite' ? value.toISOString() : value;
  if (typeof value === 'boolean') return engine === 'sqlite' ? Number(value) : value;
  if (typeof value === 'object') return JSON.stringify(value);
  return value;
}

/** Rewrites every bound value of a query; lists of values (`in (…)`, rows) are encoded item by item. */
class ValueEncoder extends OperationNodeTransformer {
  constructor(private readonly engine: PlainerEngine) {
    super();
  }

  protected override transformValue(node: ValueNode): ValueNode {
    return { ...node, value: encodeStoredValue(this.engine, node.value) };
  }

  protected override transformPrimitiveValueList(node: PrimitiveValueListNode): PrimitiveValueListNode {
    return { ...node, values: node.values.map((value) => encodeStoredValue(this.engine, value)) };
  }
}

/** Encodes the values bound for MySQL/MariaDB and SQLite, and decodes their rows into the shapes PostgreSQL returns. */
export class StoredValuesPlugin implements KyselyPlugin {
  private readonly encoder: ValueEncoder;

  constructor(engine: PlainerEngine) {
    this.encoder = new ValueEncoder(engine);
  }

  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    return this.encoder.transformNode(args.node, args.queryId);
  }

  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    for (const row of args.result.rows) {
      for (const column of Object.keys(row)) {
        if (KIND_OF_COLUMN.has(column)) row[column] = decodeStoredValue(column, row[column]);
      }
    }
    return args.result;
  }
}
