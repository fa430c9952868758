import path from 'node:path';

/** The database servers clipline runs on; `DATABASE_URL`'s scheme picks one. */
export type DatabaseEngine = 'postgres' | 'mysql' | 'sqlite';

export const DATABASE_ENGINE_NAMES: Readonly<Record<DatabaseEngine, string>> = {
  postgres: 'PostgreSQL',
  mysql: 'MySQL/MariaDB',
  sqlite: 'SQLite',
};

/**
 * Where the tables live, resolved from `DATABASE_URL` and `DATABASE_SCHEMA`:
 * - PostgreSQL: the schema is put first on the search path of every connection.
 * - MySQL/MariaDB: a schema is a database, so `DATABASE_SCHEMA` (other than `public`) names the
 *   database, and `public` means the database in the URL.
 * - SQLite: one file is one schema, so `DATABASE_SCHEMA` (other than `public`) names a file
 *   beside the one in the URL: `sqlite:.data/clipline.db` with schema `t_1` is
 *   `.data/clipline.t_1.db`.
 */
export type DatabaseTarget =
  | { engine: 'postgres'; url: string; schema: string }
  | {
      engine: 'mysql';
      host: string;
      port: number;
      user: string;
      password: string | undefined;
      database: string;
      /** TLS to the server (`?ssl=true`, or `?ssl=unverified` to skip the certificate check). */
      ssl?: { rejectUnauthorized: boolean };
    }
  | { engine: 'sqlite'; file: string };

export class DatabaseUrlError extends Error {
  override name = 'DatabaseUrlError';
}

const DEFAULT_SCHEMA = 'public';

/** The engine a URL names by its scheme, or undefined for any other URL. */
export function engineOfUrl(url: string): DatabaseEngine | undefined {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'postgres' || scheme === 'postgresql') return 'postgres';
  if (scheme === 'mysql' || scheme === 'mariadb') return 'mysql';
  if (scheme === 'sqlite') return 'sqlite';
  return undefined;
}

/**
 * `sqlite:PATH` or `sqlite://PATH`: a relative path is relative to the working directory,
 * `sqlite:///var/lib/clipline.db` is absolute.
 */
function sqliteFile(url: string): string {
  const rest = url.replace(/^sqlite:(\/\/)?/i, '');
  const file = decodedPart(rest.split('?')[0] ?? '', 'file path', url);
  if (file === '' || file.endsWith('/')) throw new DatabaseUrlError(`DATABASE_URL ${url} names no file: expected sqlite:path/to/clipline.db`);
  if (file === ':memory:') throw new DatabaseUrlError('DATABASE_URL sqlite::memory: is not shared between clipline processes: name a file');
  return path.resolve(file);
}

function schemaFile(file: string, schema: string): string {
  if (schema === DEFAULT_SCHEMA) return file;
  const extension = path.extname(file);
  return path.join(path.dirname(file), `${path.basename(file, extension)}.${schema}${extension || '.db'}`);
}

export function resolveDatabaseTarget(url: string, schema: string = DEFAULT_SCHEMA): DatabaseTarget {
  const engine = engineOfUrl(url);
  if (engine === undefined) {
    throw new DatabaseUrlError(`DATABASE_URL must start with postgres://, mysql://, mariadb:// or sqlite:, got ${JSON.stringify(shownDatabaseUrl(url))}`);
  }
  if (engine === 'sqlite') return { engine, file: schemaFile(sqliteFile(url), schema) };
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new DatabaseUrlError(`DATABASE_URL is not a valid URL: ${JSON.stringify(shownDatabaseUrl(url))}`);
  }
  const user = decodedPart(parsed.username, 'user name', url);
  const password = parsed.password ? decodedPart(parsed.password, 'password', url) : undefined;
  const named = decodedPart(parsed.pathname.replace(/^\//, ''), 'database name', url);
  if (engine === 'postgres') return { engine, url, schema };
  const database = schema !== DEFAULT_SCHEMA ? schema : named;
  const unknown = [...parsed.searchParams.keys()].filter((name) => name !== 'ssl');
  if (unknown.length)
    throw new DatabaseUrlError(`DATABASE_URL has parameters clipline does not know: ${unknown.join(', ')} (a MySQL URL takes ?ssl=true|unverified|false)`);
  const ssl = parsed.searchParams.get('ssl');
  if (ssl !== null && !['true', 'unverified', 'false'].includes(ssl)) {
    throw new DatabaseUrlError(`DATABASE_URL has ssl=${ssl}: expected ssl=true, ssl=unverified or ssl=false`);
  }
  if (!database) {
    throw new DatabaseUrlError(`DATABASE_URL ${shownDatabaseUrl(url)} names no database: add one (mysql://user@host:3306/clipline) or set DATABASE_SCHEMA`);
  }
  return {
    engine,
    host: parsed.hostname || '127.0.0.1',
    port: parsed.port ? Number(parsed.port) : 3306,
    user: user || 'root',
    password,
    database,
    ...(ssl === 'true' || ssl === 'unverified' ? { ssl: { rejectUnauthorized: ssl === 'true' } } : {}),
  };
}

/** A %-escaped part of the URL, decoded; a lone `%` (which must be written `%25`) is named. */
function decodedPart(text: string, part: string, url: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new DatabaseUrlError(`DATABASE_URL ${shownDatabaseUrl(url)} has a % that starts no escape in its ${part}: write a literal % as %25`);
  }
}

function safelyDecoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** Query parameters the drivers take a secret from (`?password=`, `?sslpassword=`, a client key). */
const SECRET_PARAMETER = /^(?:password|sslpassword|sslkey|passfile)$/i;

/** The URL with its password replaced, in the user part and in the query, fit for logs and error messages. */
export function shownDatabaseUrl(url: string): string {
  const withoutUserPassword = url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*):[^@/]*@/i, '$1:***@');
  return withoutUserPassword.replace(/([?&])([^=&#]+)=([^&#]*)/g, (whole, separator: string, name: string) =>
    SECRET_PARAMETER.test(safelyDecoded(name)) ? `${separator}${name}=***` : whole,
  );
}

/** One line naming the database, without secrets: "MySQL/MariaDB 127.0.0.1:3306/clipline". */
export function describeDatabaseTarget(target: DatabaseTarget): string {
  switch (target.engine) {
    case 'postgres':
      return `${DATABASE_ENGINE_NAMES.postgres} ${shownDatabaseUrl(target.url)} (schema ${target.schema})`;
    case 'mysql':
      return `${DATABASE_ENGINE_NAMES.mysql} ${target.host}:${target.port}/${target.database}`;
    case 'sqlite':
      return `${DATABASE_ENGINE_NAMES.sqlite} ${target.file}`;
  }
}
