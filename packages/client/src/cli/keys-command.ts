import { keyReference, type ClipLineClient } from '../client.js';
import { ClipLineApiError } from '../errors.js';
import type { ApiKey } from '../types.js';
import { parseArgs } from './args.js';
import { apiClient, EXIT_FAILURE, EXIT_OK, type CliContext } from './cli-context.js';
import { helpText } from './help.js';
import { renderTable } from './text-table.js';
import { UsageError } from './usage-error.js';

const SPEC = {
  name: { type: 'string' },
  tenant: { type: 'string' },
  admin: { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;
const SUBCOMMANDS = ['create', 'list', 'revoke'] as const;

const isStatus = (error: unknown, status: number): error is ClipLineApiError => error instanceof ClipLineApiError && error.status === status;

/**
 * The server answers a key that is not an operator's 404 on every admin route, so the CLI cannot
 * tell that apart from a producer without the routes; the message names both.
 */
function notAnOperatorKey(cause: ClipLineApiError): Error {
  return new Error(
    'the API answered 404 Not Found for /v1/admin/keys: "keys" needs an operator key in CLIPLINE_API_KEY ' +
      '(one of the producer\'s ADMIN_API_KEYS, or a key made with "clipline keys create --admin"); ' +
      'other keys are told these routes do not exist, and so is anyone talking to a producer older than this CLI',
    { cause },
  );
}

/** A 404 from `DELETE …/:ref` means an unknown key, or a key that may not see the route at all. */
async function unknownKeyOrNotOperator(api: ClipLineClient, error: ClipLineApiError, signal: AbortSignal): Promise<Error | undefined> {
  try {
    await api.listApiKeys({ signal });
    return undefined;
  } catch (probe) {
    if (isStatus(probe, 404)) return notAnOperatorKey(error);
    throw probe;
  }
}

function keyState(key: ApiKey): string {
  return key.revokedAt ? `revoked ${key.revokedAt}` : 'active';
}

/** `clipline keys create --name N [--tenant T] [--admin] | list | revoke <ref>`, through the admin API. */
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
  if (subcommand === 'revoke' && (rest.length !== 1 || rest[0]!.trim() === '')) throw new UsageError('keys revoke needs exactly one key id or prefix', 'keys');
  if (subcommand !== 'revoke' && rest.length > 0) throw new UsageError(`keys ${subcommand} takes no arguments, got "${rest.join(' ')}"`, 'keys');
  for (const option of ['name', 'tenant', 'admin'] as const) {
    if (options[option] !== undefined && subcommand !== 'create') throw new UsageError(`--${option} is only for keys create`, 'keys');
  }
  // A key is named for the service that holds it; its tenant comes from the name unless given.
  if (subcommand === 'create' && !options.name?.trim())
    throw new UsageError('keys create needs --name: the service the key is for (its tenant, unless --tenant names one)', 'keys');

  const api = apiClient(context);
  const call = { signal: context.signal };
  try {
    if (subcommand === 'create') {
      let created: Awaited<ReturnType<typeof api.createApiKey>>;
      try {
        created = await api.createApiKey(
          { name: options.name!, ...(options.tenant !== undefined ? { tenant: options.tenant } : {}), ...(options.admin ? { admin: true } : {}) },
          call,
        );
      } catch (error) {
        // The server owns the rules for names and tenants; its refusal is a usage error all the same.
        if (isStatus(error, 400)) throw new UsageError(error.problem.detail, 'keys');
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
      const all = await api.listApiKeys(call);
      if (options.json) {
        context.stdout.write(`${JSON.stringify(all, null, 2)}\n`);
      } else if (all.length === 0) {
        context.stderr.write('no API keys yet: create one with "clipline keys create --name <name>"\n');
      } else {
        context.stdout.write(
          renderTable(
            [
              { header: 'ID' },
              { header: 'PREFIX' },
              { header: 'NAME' },
              { header: 'TENANT' },
              { header: 'ROLE' },
              { header: 'CREATED' },
              { header: 'LAST USED' },
              { header: 'STATUS' },
            ],
            all.map((key) => [key.id, key.prefix, key.name, key.tenant, key.role, key.createdAt, key.lastUsedAt ?? 'never', keyState(key)]),
          ),
        );
      }
      return EXIT_OK;
    }

    // A whole key given is named by its prefix, here as in the request: its secret is not printed back.
    const reference = keyReference(rest[0]!);
    let outcome: 'revoked' | 'already-revoked' | 'not-found';
    try {
      ({ outcome } = await api.revokeApiKey(reference, call));
    } catch (error) {
      if (!isStatus(error, 404)) throw error;
      const refusal = await unknownKeyOrNotOperator(api, error, context.signal);
      if (refusal) throw refusal;
      outcome = 'not-found';
    }
    if (options.json) context.stdout.write(`${JSON.stringify({ key: reference, outcome })}\n`);
    else if (outcome === 'not-found') context.stderr.write(`clipline: no API key with id or prefix "${reference}" (see "clipline keys list")\n`);
    else context.stdout.write(outcome === 'revoked' ? `revoked ${reference}\n` : `${reference} was already revoked\n`);
    return outcome === 'not-found' ? EXIT_FAILURE : EXIT_OK;
  } catch (error) {
    if (isStatus(error, 404)) throw notAnOperatorKey(error);
    throw error;
  }
}
