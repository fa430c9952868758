import path from 'node:path';
import { ConfigError, DEFAULT_DATABASE_URL, DEV_ACCOUNTS_KEYRING, DEV_API_KEY, loadConfig, resolveDatabaseTarget } from '@clipline/shared';

describe('loadConfig', () => {
  it('starts with no variables at all, on the local defaults', () => {
    const config = loadConfig({});
    expect(config.redisUrl).toBe('redis://127.0.0.1:6379');
    expect(config.port).toBe(3000);
    expect(config.dashboardPort).toBe(3001);
    expect(config.apiKeys).toEqual([DEV_API_KEY]);
    expect(config.fileSourceRoots).toBe('any');
    expect(config.databaseUrl).toBe(DEFAULT_DATABASE_URL);
    expect(resolveDatabaseTarget(config.databaseUrl, config.databaseSchema)).toEqual({ engine: 'sqlite', file: path.resolve('.data/clipline.db') });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.apiKeys)).toBe(true);
  });

  it('names each malformed variable and what it expected', () => {
    let message = '';
    try {
      loadConfig({ PORT: 'eighty', REDIS_URL: 'http://example', WORKER_IO_CONCURRENCY: '0' });
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      message = (error as Error).message;
    }
    expect(message).toMatch(/PORT="eighty"/);
    expect(message).toMatch(/REDIS_URL="http:\/\/example": expected a redis/);
    expect(message).toMatch(/WORKER_IO_CONCURRENCY="0"/);
  });

  it('parses lists and booleans', () => {
    const config = loadConfig({ API_KEYS: ' a, b ,,c', ALLOW_PRIVATE_SOURCES: 'false', FILE_SOURCE_ROOTS: '/srv/media,/tmp' });
    expect(config.apiKeys).toEqual(['a', 'b', 'c']);
    expect(config.allowPrivateSources).toBe(false);
    expect(config.fileSourceRoots).toEqual(['/srv/media', '/tmp']);
  });

  it('treats empty strings as unset', () => {
    expect(loadConfig({ PORT: '' }).port).toBe(3000);
  });

  it('binds loopback unless HOST is set, and has safe fair-use and lifecycle defaults', () => {
    const config = loadConfig({});
    expect(config.host).toBe('127.0.0.1');
    expect(loadConfig({ HOST: '0.0.0.0' }).host).toBe('0.0.0.0');
    expect(config).toMatchObject({
      producerMetricsPort: 9463, adminApiKeys: [], dashboardViewer: null, authFailuresPerMinute: 20, maxActiveVideosPerTenant: 1000,
      sseMaxStreamsPerKey: 50, sseMaxSeconds: 3600, keepSources: false, retentionDays: 30,
    });
    expect(loadConfig({ DASHBOARD_VIEWER_USER: 'viewer', DASHBOARD_VIEWER_PASSWORD: 'pw' }).dashboardViewer).toEqual({ user: 'viewer', password: 'pw' });
  });

  it('refuses dev credentials, placeholders, short and missing secrets in production, naming the variable but never its value', () => {
    const strong = (name: string) => `${name}-${'s'.repeat(32)}`;
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/API_KEYS: must be set in production[\s\S]*DASHBOARD_PASSWORD: must be set/);
    expect(() => loadConfig({ NODE_ENV: 'production', API_KEYS: DEV_API_KEY, DASHBOARD_PASSWORD: strong('d') })).toThrow(/API_KEYS: the dev value is refused/);
    expect(() => loadConfig({ NODE_ENV: 'production', API_KEYS: strong('k'), DASHBOARD_PASSWORD: 'clipline' })).toThrow(/DASHBOARD_PASSWORD: the dev value is refused/);
    expect(() => loadConfig({ NODE_ENV: 'production', API_KEYS: 'change-me-api-key-but-long-enough-to-pass', DASHBOARD_PASSWORD: strong('d') })).toThrow(
      /API_KEYS: a placeholder is refused/,
    );
    let message = '';
    try {
      loadConfig({ NODE_ENV: 'production', API_KEYS: `${strong('k')},short-key`, ADMIN_API_KEYS: 'tiny', DASHBOARD_PASSWORD: 'p4ss', DASHBOARD_VIEWER_PASSWORD: 'v' });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/API_KEYS: must be at least 32 bytes/);
    expect(message).toMatch(/ADMIN_API_KEYS: must be at least 32 bytes/);
    expect(message).toMatch(/DASHBOARD_PASSWORD: must be at least 32 bytes/);
    expect(message).toMatch(/DASHBOARD_VIEWER_PASSWORD: must be at least 32 bytes/);
    expect(message).not.toMatch(/short-key|tiny|p4ss/);
    const secrets = { NODE_ENV: 'production', API_KEYS: strong('k'), DASHBOARD_PASSWORD: strong('d'), ACCOUNTS_KEYRING: `k1:${Buffer.alloc(32, 7).toString('base64')}` };
    expect(() => loadConfig({ ...secrets, ACCOUNTS_KEYRING: DEV_ACCOUNTS_KEYRING })).toThrow(/ACCOUNTS_KEYRING: the dev value is refused/);
    expect(() => loadConfig(secrets)).toThrow(/DATABASE_URL: must be set in production/);
    const config = loadConfig({ ...secrets, DATABASE_URL: 'postgres://clipline@db:5432/clipline' });
    expect(config.fileSourceRoots).toEqual([]);
    expect(config.allowPrivateSources).toBe(false);
  });

  it('takes PostgreSQL, MySQL/MariaDB and SQLite URLs, and names what is wrong with others', () => {
    expect(loadConfig({ DATABASE_URL: 'postgresql://u:p@db/clipline' }).databaseUrl).toBe('postgresql://u:p@db/clipline');
    expect(loadConfig({ DATABASE_URL: 'mariadb://root@127.0.0.1:3306/clipline' }).databaseUrl).toBe('mariadb://root@127.0.0.1:3306/clipline');
    expect(loadConfig({ DATABASE_URL: 'sqlite:/var/lib/clipline/db.sqlite' }).databaseUrl).toBe('sqlite:/var/lib/clipline/db.sqlite');
    expect(() => loadConfig({ DATABASE_URL: 'redis://127.0.0.1' })).toThrow(/DATABASE_URL="redis:\/\/127.0.0.1": expected postgres/);
    expect(() => loadConfig({ DATABASE_URL: 'mysql://root@127.0.0.1:3306' })).toThrow(/DATABASE_URL: mysql:\/\/root@127.0.0.1:3306 names no database/);
    expect(() => loadConfig({ DATABASE_URL: 'sqlite::memory:' })).toThrow(/DATABASE_URL: sqlite::memory: is not shared between clipline processes/);
    expect(() => loadConfig({ DATABASE_URL: 'sqlite:' })).toThrow(/names no file/);
    expect(() => loadConfig({ DATABASE_URL: 'mysql://root@db/clipline?sslmode=require' })).toThrow(/DATABASE_URL: has parameters clipline does not know: sslmode/);
    expect(() => loadConfig({ DATABASE_URL: 'mysql://root@db/clipline?ssl=maybe' })).toThrow(/expected ssl=true, ssl=unverified or ssl=false/);
  });

  it('reads MySQL URLs into the server, credentials, database and TLS settings', () => {
    expect(resolveDatabaseTarget('mariadb://app:s%40cret@db.internal:3307/clips?ssl=true')).toEqual({
      engine: 'mysql', host: 'db.internal', port: 3307, user: 'app', password: 's@cret', database: 'clips', ssl: { rejectUnauthorized: true },
    });
    expect(resolveDatabaseTarget('mysql://127.0.0.1/clips', 't_1')).toMatchObject({ database: 't_1', user: 'root', port: 3306 });
    expect(resolveDatabaseTarget('mysql://127.0.0.1/clips?ssl=unverified')).toMatchObject({ ssl: { rejectUnauthorized: false } });
    expect(resolveDatabaseTarget('sqlite:/var/lib/clipline/db.sqlite', 't_1')).toEqual({ engine: 'sqlite', file: '/var/lib/clipline/db.t_1.sqlite' });
  });
});
