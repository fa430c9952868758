import { ApiKeysRepository, createDatabase, shownDatabaseUrl, type ApiKeyInfo } from '@clipline/shared';
import { parseArgs } from './args.js';
import { EXIT_FAILURE, EXIT_OK, type CliContext } from './cli-context.js';
import type { CliSettings } from './cli-config.js';
import { helpText } from './help.js';
import { renderTable } from './text-table.js';
import { UsageError } from './usage-error.js';

const SPEC = { name: { type: 'string' }, tenant: { type: 'string' }, admin: { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } as const;
const SUBCOMMANDS = ['create', 'list', 'revoke'] as const;

// A MySQL schema is a database and a SQLite one a file: the migration creates a missing one too.
const MISSING_TABLE_CODES = new Set(['42P01', 'ER_NO_SUCH_TABLE', 'ER_BAD_DB_ERROR', 'SQLITE_CANTOPEN']);
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'ETIMEDOUT', '3D000', '28P01', 'ER_ACCESS_DENIED_ERROR']);

/** Database failures an operator can act on, said in a sentence that names the fix. */
function describeDatabaseFailure(error: unknown, settings: CliSettings): Error {
  const failure = error as { code?: string; message?: string; errors?: { code?: string }[] };
  const code = failure.code ?? failure.errors?.[0]?.code;
  if ((code && MISSING_TABLE_CODES.has(code)) || /^no such table: api_keys/.test(failure.message ?? '')) {
    return new Error(`the api_keys table does not exist in schema "${settings.databaseSchema}": run "npm run migrate" with the same DATABASE_URL and DATABASE_SCHEMA`);
  }
  if (code && UNREACHABLE_CODES.has(code)) {
    return new Error(`could not use the database at ${shownDatabaseUrl(settings.databaseUrl)}: ${failure.message || code}`, { cause: error });
  }
  return error instanceof Error ? error : new Error(String(error));
}

function keyState(key: ApiKeyInfo): string {
  return key.revokedAt ? `revoked ${key.revokedAt.toISOString()}` : 'active';
}

/** `clipline keys create [--name N] [--tenant T] [--admin] | list | revoke <id>` */
export async function keysCommand(argv: readonly string[], context: CliContext): Promise<number> {
  const { options, positionals } = parseArgs(argv, SPEC, 'keys');
  if (options.help) {
    context.stdout.write(helpText('keys'));
    return EXIT_OK;
  }
  const [subcommand, ...rest] = positionals;
  if (!subcommand || !(SUBCOMMANDS as readonly string[]).includes(subcommand)) {
    throw new UsageError(subcommand ? `unknown keys command "${subcommand}" (create, list or revoke)` : 'keys needs a command: create, list or revoke', 'keys');
  }
  if (subcommand === 'revoke' && rest.length !== 1) throw new UsageError('keys revoke needs exactly one key id or prefix', 'keys');
  if (subcommand !== 'revoke' && rest.length > 0) throw new UsageError(`keys ${subcommand} takes no arguments, got "${rest.join(' ')}"`, 'keys');
  for (const option of ['name', 'tenant', 'admin'] as const) {
    if (options[option] !== undefined && subcommand !== 'create') throw new UsageError(`--${option} is only for keys create`, 'keys');
  }

  const settings = context.settings();
  const db = createDatabase({ url: settings.databaseUrl, schema: settings.databaseSchema, poolSize: 1, mustExist: true });
  const keys = new ApiKeysRepository(db);
  try {
    if (subcommand === 'create') {
      let created;
      try {
        created = await keys.create(options.name ?? 'default', { ...(options.tenant !== undefined ? { tenant: options.tenant } : {}), admin: options.admin === true });
      } catch (error) {
        if (error instanceof RangeError) throw new UsageError(error.message, 'keys');
        throw error;
      }
      if (options.json) {
        context.stdout.write(`${JSON.stringify(created, null, 2)}\n`);
      } else {
        // Only the key on stdout, so `KEY=$(clipline keys create)` captures exactly it.
        context.stderr.write(
          `created API key "${created.name}" (id ${created.id}, prefix ${created.prefix}, tenant ${created.tenant}, role ${created.role}); it is shown only this once:\n`,
        );
        context.stdout.write(`${created.key}\n`);
      }
      return EXIT_OK;
    }
    if (subcommand === 'list') {
      const all = await keys.list();
      if (options.json) {
        context.stdout.write(`${JSON.stringify(all, null, 2)}\n`);
      } else if (all.length === 0) {
        context.stderr.write('no API keys yet: create one with "clipline keys create --name <name>"\n');
      } else {
        context.stdout.write(
          renderTable(
            [{ header: 'ID' }, { header: 'PREFIX' }, { header: 'NAME' }, { header: 'TENANT' }, { header: 'ROLE' }, { header: 'CREATED' }, { header: 'LAST USED' }, { header: 'STATUS' }],
            all.map((key) => [key.id, key.prefix, key.name, key.tenant, key.role, key.createdAt.toISOString(), key.lastUsedAt?.toISOString() ?? 'never', keyState(key)]),
          ),
        );
      }
      return EXIT_OK;
    }
    const reference = rest[0]!;
    const outcome = await keys.revoke(reference);
    if (options.json) context.stdout.write(`${JSON.stringify({ key: reference, outcome })}\n`);
    else if (outcome === 'not-found') context.stderr.write(`clipline: no API key with id or prefix "${reference}" (see "clipline keys list")\n`);
    else context.stdout.write(outcome === 'revoked' ? `revoked ${reference}\n` : `${reference} was already revoked\n`);
    return outcome === 'not-found' ? EXIT_FAILURE : EXIT_OK;
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw describeDatabaseFailure(error, settings);
  } finally {
    await db.destroy();
  }
}
