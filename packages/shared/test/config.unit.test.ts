import path from 'node:path';
import {
  ConfigError,
  DEFAULT_DATABASE_URL,
  DEV_ACCOUNTS_KEYRING,
  DEV_ADMIN_API_KEY,
  DEV_API_KEY,
  loadConfig,
  resolveDatabaseTarget,
  shownDatabaseUrl,
  usableCores,
} from '@clipline/shared';

/** Variables production accepts, to which each case adds or removes one thing. */
const strong = (name: string) => `${name}-${'s'.repeat(32)}`;
const PRODUCTION = {
  NODE_ENV: 'production',
  API_KEYS: strong('k'),
  DASHBOARD_PASSWORD: strong('d'),
  ACCOUNTS_KEYRING: `k1:${Buffer.alloc(32, 7).toString('base64')}`,
  DATABASE_URL: 'postgres://clipline@db:5432/clipline',
};

/** The message of the ConfigError `load` throws ('' when it does not throw). */
function refusal(load: () => unknown): string {
  try {
    load();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  return '';
}

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
    // URLs may carry a password: named, never echoed.
    expect(message).toMatch(/REDIS_URL: expected a redis/);
    expect(message).not.toMatch(/http:\/\/example/);
    expect(message).toMatch(/WORKER_IO_CONCURRENCY="0"/);
  });

  it('parses lists and booleans', () => {
    const config = loadConfig({ API_KEYS: ' a, b ,,c', ALLOW_PRIVATE_SOURCES: 'false', FILE_SOURCE_ROOTS: '/srv/media,/tmp' });
    expect(config.apiKeys).toEqual(['a', 'b', 'c']);
    expect(config.allowPrivateSources).toBe(false);
    expect(config.fileSourceRoots).toEqual(['/srv/media', '/tmp']);
  });

  it('trusts no proxy unless TRUST_PROXY names them, and refuses an entry that is no address or range', () => {
    expect(loadConfig({}).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: 'loopback, 10.0.0.0/8,192.168.1.5, 2001:db8::/32' }).trustProxy).toEqual([
      'loopback',
      '10.0.0.0/8',
      '192.168.1.5',
      '2001:db8::/32',
    ]);
    for (const wrong of ['proxy.example', '10.0.0.0/33', '10.0.0.1/8/2', '::1/129', 'all']) {
      expect(refusal(() => loadConfig({ TRUST_PROXY: wrong }))).toMatch(
        /TRUST_PROXY.*an IP address, an address\/prefix range, or loopback, linklocal or uniquelocal/,
      );
    }
  });

  it('treats empty strings as unset', () => {
    expect(loadConfig({ PORT: '' }).port).toBe(3000);
  });

  it('treats blank strings as unset too, not as the number 0', () => {
    const config = loadConfig({ PORT: ' ', API_RATE_LIMIT_PER_MINUTE: '  ', RENDER_CRF: '\t' });
    const defaults = loadConfig({});
    expect([config.port, config.apiRateLimitPerMinute, config.cpuWorker.renderCrf]).toEqual([
      3000,
      defaults.apiRateLimitPerMinute,
      defaults.cpuWorker.renderCrf,
    ]);
    expect(defaults.apiRateLimitPerMinute).toBeGreaterThan(0);
  });

  it.each([
    ['SSE_MAX_SECONDS', '3000000', /SSE_MAX_SECONDS="3000000": at most 2147483 s/],
    ['DOWNLOAD_TIMEOUT_SECONDS', '99999999', /DOWNLOAD_TIMEOUT_SECONDS="99999999": at most 2147483 s/],
    ['OPENAI_TIMEOUT_MS', '3000000000', /OPENAI_TIMEOUT_MS="3000000000": at most 2147483647 ms/],
  ])('refuses a %s longer than a timer can wait (Node would fire it after 1 ms)', (name, value, expected) => {
    expect(refusal(() => loadConfig({ [name]: value }))).toMatch(expected);
    expect(refusal(() => loadConfig({ [name]: '2000' }))).toBe('');
  });

  it.each([
    ['a key of 33 bytes', `k1:${Buffer.alloc(33, 7).toString('base64')}`, /ACCOUNTS_KEYRING: key "k1" decodes to 33 bytes/],
    ['a key of 31 bytes', `k1:${Buffer.alloc(31, 7).toString('base64').replace(/=*$/, '')}=`, /ACCOUNTS_KEYRING: key "k1" decodes to 31 bytes/],
    [
      'an id named twice',
      `main:${Buffer.alloc(32, 1).toString('base64')},main:${Buffer.alloc(32, 2).toString('base64')}`,
      /ACCOUNTS_KEYRING: keyring names key "main" twice/,
    ],
  ])('refuses an ACCOUNTS_KEYRING with %s at start-up, naming the variable, never the key', (_case, keyring, expected) => {
    const message = refusal(() => loadConfig({ ACCOUNTS_KEYRING: keyring }));
    expect(message).toMatch(expected);
    expect(message).not.toContain(keyring.slice(keyring.indexOf(':') + 1, keyring.indexOf(':') + 20));
  });

  it('binds loopback unless HOST is set, and has safe fair-use and lifecycle defaults', () => {
    const config = loadConfig({});
    expect(config.host).toBe('127.0.0.1');
    expect(loadConfig({ HOST: '0.0.0.0' }).host).toBe('0.0.0.0');
    expect(config).toMatchObject({
      producerMetricsPort: 9463,
      adminApiKeys: [DEV_ADMIN_API_KEY],
      dashboardViewer: null,
      authFailuresPerMinute: 20,
      maxActiveVideosPerTenant: 1000,
      sseMaxStreamsPerKey: 50,
      sseMaxSeconds: 3600,
      keepSources: false,
      retentionDays: 30,
    });
    expect(loadConfig({ DASHBOARD_VIEWER_USER: 'viewer', DASHBOARD_VIEWER_PASSWORD: 'pw' }).dashboardViewer).toEqual({ user: 'viewer', password: 'pw' });
  });

  it('refuses dev credentials, placeholders, short and missing secrets in production, naming the variable but never its value', () => {
    const strong = (name: string) => `${name}-${'s'.repeat(32)}`;
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/API_KEYS: must be set in production[\s\S]*DASHBOARD_PASSWORD: must be set/);
    expect(() => loadConfig({ NODE_ENV: 'production', API_KEYS: DEV_API_KEY, DASHBOARD_PASSWORD: strong('d') })).toThrow(/API_KEYS: the dev value is refused/);
    expect(() => loadConfig({ NODE_ENV: 'production', API_KEYS: strong('k'), DASHBOARD_PASSWORD: 'clipline' })).toThrow(
      /DASHBOARD_PASSWORD: the dev value is refused/,
    );
    expect(() => loadConfig({ NODE_ENV: 'production', API_KEYS: 'change-me-api-key-but-long-enough-to-pass', DASHBOARD_PASSWORD: strong('d') })).toThrow(
      /API_KEYS: a placeholder is refused/,
    );
    let message = '';
    try {
      loadConfig({
        NODE_ENV: 'production',
        API_KEYS: `${strong('k')},short-key`,
        ADMIN_API_KEYS: 'tiny',
        DASHBOARD_PASSWORD: 'p4ss',
        DASHBOARD_VIEWER_PASSWORD: 'v',
      });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/API_KEYS: must be at least 32 bytes/);
    expect(message).toMatch(/ADMIN_API_KEYS: must be at least 32 bytes/);
    expect(message).toMatch(/DASHBOARD_PASSWORD: must be at least 32 bytes/);
    expect(message).toMatch(/DASHBOARD_VIEWER_PASSWORD: must be at least 32 bytes/);
    expect(message).not.toMatch(/short-key|tiny|p4ss/);
    expect(() => loadConfig({ NODE_ENV: 'production', API_KEYS: strong('k'), ADMIN_API_KEYS: DEV_ADMIN_API_KEY, DASHBOARD_PASSWORD: strong('d') })).toThrow(
      /ADMIN_API_KEYS: the dev value is refused/,
    );
    // Production never gets the dev operator key by default.
    expect(
      loadConfig({
        NODE_ENV: 'production',
        API_KEYS: strong('k'),
        DASHBOARD_PASSWORD: strong('d'),
        ACCOUNTS_KEYRING: `k1:${Buffer.alloc(32, 7).toString('base64')}`,
        DATABASE_URL: 'postgres://db/x',
      }).adminApiKeys,
    ).toEqual([]);
    const secrets = {
      NODE_ENV: 'production',
      API_KEYS: strong('k'),
      DASHBOARD_PASSWORD: strong('d'),
      ACCOUNTS_KEYRING: `k1:${Buffer.alloc(32, 7).toString('base64')}`,
    };
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
    expect(() => loadConfig({ DATABASE_URL: 'redis://127.0.0.1' })).toThrow(/DATABASE_URL: expected postgres/);
    expect(() => loadConfig({ DATABASE_URL: 'mysql://root@127.0.0.1:3306' })).toThrow(/DATABASE_URL: mysql:\/\/root@127.0.0.1:3306 names no database/);
    expect(() => loadConfig({ DATABASE_URL: 'sqlite::memory:' })).toThrow(/DATABASE_URL: sqlite::memory: is not shared between clipline processes/);
    expect(() => loadConfig({ DATABASE_URL: 'sqlite:' })).toThrow(/names no file/);
    expect(() => loadConfig({ DATABASE_URL: 'mysql://root@db/clipline?sslmode=require' })).toThrow(
      /DATABASE_URL: has parameters clipline does not know: sslmode/,
    );
    expect(() => loadConfig({ DATABASE_URL: 'mysql://root@db/clipline?ssl=maybe' })).toThrow(/expected ssl=true, ssl=unverified or ssl=false/);
  });

  it('names a lone % in a database URL, which would be a malformed escape, with the part holding it and the password hidden', () => {
    expect(() => loadConfig({ DATABASE_URL: 'sqlite:/tmp/50%.db' })).toThrow(
      /DATABASE_URL: sqlite:\/tmp\/50%\.db has a % that starts no escape in its file path: write a literal % as %25/,
    );
    expect(loadConfig({ DATABASE_URL: 'sqlite:/tmp/50%25.db' }).databaseUrl).toBe('sqlite:/tmp/50%25.db');
    expect(resolveDatabaseTarget('sqlite:/tmp/50%25.db')).toEqual({ engine: 'sqlite', file: '/tmp/50%.db' });
    const refused = () => loadConfig({ DATABASE_URL: 'mysql://app:100%sure@db/clipline' });
    expect(refused).toThrow(/has a % that starts no escape in its password: write a literal % as %25/);
    expect(refused).not.toThrow(/100%sure/);
    expect(() => loadConfig({ DATABASE_URL: 'mysql://app@db/clips%' })).toThrow(/in its database name/);
    expect(() => loadConfig({ DATABASE_URL: 'postgres://a%g@db/clipline' })).toThrow(/in its user name/);
  });

  it('reads MySQL URLs into the server, credentials, database and TLS settings', () => {
    expect(resolveDatabaseTarget('mariadb://app:s%40cret@db.internal:3307/clips?ssl=true')).toEqual({
      engine: 'mysql',
      host: 'db.internal',
      port: 3307,
      user: 'app',
      password: 's@cret',
      database: 'clips',
      ssl: { rejectUnauthorized: true },
    });
    expect(resolveDatabaseTarget('mysql://127.0.0.1/clips', 't_1')).toMatchObject({ database: 't_1', user: 'root', port: 3306 });
    expect(resolveDatabaseTarget('mysql://127.0.0.1/clips?ssl=unverified')).toMatchObject({ ssl: { rejectUnauthorized: false } });
    expect(resolveDatabaseTarget('sqlite:/var/lib/clipline/db.sqlite', 't_1')).toEqual({ engine: 'sqlite', file: '/var/lib/clipline/db.t_1.sqlite' });
  });

  it('has a default for every setting, the same as the README table', () => {
    const { providers, ...config } = loadConfig({});
    expect(config).toEqual({
      env: 'development',
      logLevel: 'info',
      logFlushMs: 50,
      redisUrl: 'redis://127.0.0.1:6379',
      queuePrefix: '{clipline}',
      databaseUrl: `sqlite:${path.resolve('.data/clipline.db')}`,
      databaseSchema: 'public',
      databasePoolSize: 10,
      storageDir: path.resolve('.data/storage'),
      maxSourceBytes: 2 * 1024 ** 3,
      maxSourceSeconds: 4 * 3600,
      maxSourcePixels: 8192 * 4320,
      fileSourceRoots: 'any',
      host: '127.0.0.1',
      port: 3000,
      dashboardPort: 3001,
      producerMetricsPort: 9463,
      workerIoMetricsPort: 9464,
      workerCpuMetricsPort: 9465,
      apiKeys: [DEV_API_KEY],
      adminApiKeys: [DEV_ADMIN_API_KEY],
      dashboardUser: 'admin',
      dashboardPassword: 'clipline',
      dashboardViewer: null,
      authFailuresPerMinute: 20,
      maxActiveVideosPerTenant: 1000,
      sseMaxStreamsPerKey: 50,
      sseMaxSeconds: 3600,
      keepSources: false,
      retentionDays: 30,
      workerIoConcurrency: 50,
      workerCpuConcurrency: Math.min(2, usableCores()),
      cpuPoolThreads: usableCores(),
      analyzeFps: 10,
      analyzeWidth: 160,
      shutdownTimeoutMs: 8000,
      jobStallLimit: 3,
      ffmpegPath: 'ffmpeg',
      ffprobePath: 'ffprobe',
      ffmpegSpawning: 'helper',
      allowPrivateSources: true,
      downloadTimeoutMs: 600_000,
      apiRateLimitPerMinute: 1200,
      fairShareQuotaPerMinute: 60,
      idempotencyTtlSeconds: 24 * 3600,
      corsOrigins: [],
      accountsKeyring: DEV_ACCOUNTS_KEYRING,
      metadataSyncIntervalMs: 3600_000,
      trustProxy: false,
      webhookTimeoutMs: 10_000,
      cpuWorker: { renderConcurrency: undefined, renderPreset: 'veryfast', renderCrf: 20 },
    });
    expect(providers).toEqual({
      youtube: {
        baseUrl: 'https://www.googleapis.com',
        apiKey: undefined,
        timeoutMs: 10_000,
        rateLimit: { perSecond: 10, burst: 10 },
        cacheTtlMs: 3600_000,
        cacheRetainMs: 7 * 86_400_000,
      },
      openai: {
        baseUrl: 'https://api.openai.com/v1',
        apiKey: undefined,
        timeoutMs: 120_000,
        rateLimit: { perSecond: 50, burst: 50 },
        chatModel: 'gpt-4o-mini',
        transcriptionModel: 'whisper-1',
      },
      stability: {
        baseUrl: 'https://api.stability.ai',
        apiKey: undefined,
        timeoutMs: 120_000,
        rateLimit: { perSecond: 10, burst: 10 },
        engineId: 'stable-diffusion-xl-1024-v1-0',
      },
      elevenlabs: {
        baseUrl: 'https://api.elevenlabs.io',
        apiKey: undefined,
        timeoutMs: 120_000,
        rateLimit: { perSecond: 5, burst: 5 },
        voiceId: '21m00Tcm4TlvDq8ikWAM',
        modelId: 'eleven_multilingual_v2',
      },
      breaker: { volumeThreshold: 5, errorThresholdPercentage: 50, resetTimeoutMs: 30_000, rollingWindowMs: 10_000, outageMaxMs: 900_000 },
      getRetries: 2,
      getRetryDelayMs: 250,
      limiterMaxWaitMs: 1000,
    });
    expect(Object.isFrozen(providers.openai.rateLimit)).toBe(true);
  });

  it('turns seconds and hours into the units the code uses', () => {
    expect(
      loadConfig({
        SHUTDOWN_TIMEOUT_SECONDS: '3',
        DOWNLOAD_TIMEOUT_SECONDS: '4',
        IDEMPOTENCY_TTL_HOURS: '2',
        METADATA_SYNC_INTERVAL_SECONDS: '5',
        WEBHOOK_TIMEOUT_SECONDS: '6',
      }),
    ).toMatchObject({
      shutdownTimeoutMs: 3000,
      downloadTimeoutMs: 4000,
      idempotencyTtlSeconds: 7200,
      metadataSyncIntervalMs: 5000,
      webhookTimeoutMs: 6000,
    });
    expect(loadConfig({ STORAGE_DIR: 'rel/store' }).storageDir).toBe(path.resolve('rel/store'));
    expect(loadConfig({ RENDER_CONCURRENCY: '3', RENDER_PRESET: 'fast', RENDER_CRF: '23' }).cpuWorker).toEqual({
      renderConcurrency: 3,
      renderPreset: 'fast',
      renderCrf: 23,
    });
    expect(refusal(() => loadConfig({ RENDER_PRESET: 'placebo', RENDER_CRF: '99' }))).toMatch(/RENDER_PRESET="placebo"[\s\S]*RENDER_CRF="99"/);
  });

  it('accepts a complete production environment, with production defaults', () => {
    const config = loadConfig(PRODUCTION);
    expect(config).toMatchObject({
      env: 'production',
      fileSourceRoots: [],
      allowPrivateSources: false,
      apiKeys: [PRODUCTION.API_KEYS],
      accountsKeyring: PRODUCTION.ACCOUNTS_KEYRING,
    });
    expect(loadConfig({ ...PRODUCTION, ALLOW_PRIVATE_SOURCES: 'true', FILE_SOURCE_ROOTS: '/srv' })).toMatchObject({
      allowPrivateSources: true,
      fileSourceRoots: ['/srv'],
    });
  });

  it.each([
    ['API_KEYS', { API_KEYS: undefined }, 'API_KEYS: must be set in production'],
    ['DASHBOARD_PASSWORD', { DASHBOARD_PASSWORD: undefined }, 'DASHBOARD_PASSWORD: must be set in production'],
    ['ACCOUNTS_KEYRING', { ACCOUNTS_KEYRING: undefined }, 'ACCOUNTS_KEYRING: must be set in production'],
    ['the dev ACCOUNTS_KEYRING', { ACCOUNTS_KEYRING: DEV_ACCOUNTS_KEYRING }, 'ACCOUNTS_KEYRING: the dev value is refused in production'],
    ['DATABASE_URL', { DATABASE_URL: undefined }, 'DATABASE_URL: must be set in production'],
    ['the dev API key', { API_KEYS: DEV_API_KEY }, 'API_KEYS: the dev value is refused in production'],
    ['the dev API key as an operator key', { ADMIN_API_KEYS: DEV_API_KEY }, 'ADMIN_API_KEYS: the dev value is refused in production'],
    ['the dev dashboard password', { DASHBOARD_PASSWORD: 'clipline' }, 'DASHBOARD_PASSWORD: the dev value is refused in production'],
    ['a placeholder key', { API_KEYS: 'change-me-please-this-is-long-enough-to-pass' }, 'API_KEYS: a placeholder is refused in production'],
    ['a placeholder password', { DASHBOARD_PASSWORD: 'changeme' }, 'DASHBOARD_PASSWORD: a placeholder is refused in production'],
    [
      'a short viewer password',
      { DASHBOARD_VIEWER_USER: 'viewer', DASHBOARD_VIEWER_PASSWORD: 'q7#' },
      'DASHBOARD_VIEWER_PASSWORD: must be at least 32 bytes in production',
    ],
    ['the upstream simulator', { UPSTREAM_SIM_URL: 'http://sim:3900' }, 'UPSTREAM_SIM_URL: the upstream simulator is refused in production'],
  ])('refuses %s in production, naming the variable and not its value', (_case, change, line) => {
    const env: Record<string, string | undefined> = { ...PRODUCTION, ...change };
    const message = refusal(() => loadConfig(env));
    const [heading, ...lines] = message.split('\n');
    expect(heading).toBe('invalid environment:');
    expect(lines).toHaveLength(1);
    expect(lines[0]?.startsWith(`  ${line}`)).toBe(true);
    for (const value of Object.values(change)) if (value) expect(message).not.toContain(value);
  });

  it('names one line per variable and weakness, however many keys share it', () => {
    const message = refusal(() => loadConfig({ ...PRODUCTION, API_KEYS: 'short-1,short-2,short-3' }));
    expect(message.match(/API_KEYS: must be at least 32 bytes/g)).toHaveLength(1);
    expect(message).not.toMatch(/short-/);
  });

  it('checks production rules only once every variable is valid on its own', () => {
    expect(refusal(() => loadConfig({ NODE_ENV: 'production', PORT: 'eighty' }))).toBe(
      'invalid environment:\n  PORT="eighty": Invalid input: expected number, received NaN',
    );
  });

  it('reads the provider settings into the providers section', () => {
    const { providers } = loadConfig({
      OPENAI_API_KEY: 'sk-live',
      OPENAI_BASE_URL: 'https://proxy.example/v1/',
      OPENAI_RATE_LIMIT_PER_SECOND: '2.5',
      OPENAI_CHAT_MODEL: 'gpt-x',
      YOUTUBE_RATE_LIMIT_PER_SECOND: '0',
      YOUTUBE_CACHE_TTL_SECONDS: '2',
      STABILITY_RATE_LIMIT_BURST: '7',
      ELEVENLABS_VOICE_ID: 'voice',
      PROVIDER_BREAKER_ERROR_PERCENT: '25',
      PROVIDER_GET_RETRIES: '0',
      PROVIDER_LIMITER_MAX_WAIT_MS: '0',
    });
    expect(providers.openai).toMatchObject({
      apiKey: 'sk-live',
      baseUrl: 'https://proxy.example/v1',
      rateLimit: { perSecond: 2.5, burst: 3 },
      chatModel: 'gpt-x',
    });
    expect(providers.youtube).toMatchObject({ apiKey: undefined, rateLimit: undefined, cacheTtlMs: 2000 });
    expect(providers.stability.rateLimit).toEqual({ perSecond: 10, burst: 7 });
    expect(providers.elevenlabs.voiceId).toBe('voice');
    expect(providers).toMatchObject({ breaker: { errorThresholdPercentage: 25 }, getRetries: 0, limiterMaxWaitMs: 0 });
  });

  it('points every provider without a base URL of its own at the upstream simulator, with its key', () => {
    const { providers } = loadConfig({ UPSTREAM_SIM_URL: 'http://127.0.0.1:3900/', OPENAI_BASE_URL: 'https://proxy.example/v1', YOUTUBE_API_KEY: 'yt-key' });
    expect(providers.openai).toMatchObject({ baseUrl: 'https://proxy.example/v1', apiKey: 'sim-key' });
    expect(providers.youtube).toMatchObject({ baseUrl: 'http://127.0.0.1:3900', apiKey: 'yt-key' });
    expect(providers.stability).toMatchObject({ baseUrl: 'http://127.0.0.1:3900', apiKey: 'sim-key' });
    expect(loadConfig({ UPSTREAM_SIM_URL: 'http://sim', UPSTREAM_SIM_API_KEY: 'other' }).providers.elevenlabs.apiKey).toBe('other');
  });

  it('names each malformed provider variable', () => {
    const message = refusal(() => loadConfig({ OPENAI_BASE_URL: 'ftp://x', PROVIDER_BREAKER_RESET_MS: '-1', UPSTREAM_SIM_URL: 'sim' }));
    expect(message).toMatch(/UPSTREAM_SIM_URL: expected an http/);
    expect(message).toMatch(/OPENAI_BASE_URL: expected an http/);
    expect(message).not.toMatch(/ftp:\/\/x/);
    expect(message).toMatch(/PROVIDER_BREAKER_RESET_MS="-1"/);
  });
});

describe('shownDatabaseUrl', () => {
  it('hides a password in the user part and in the query, and nothing else', () => {
    expect(shownDatabaseUrl('postgres://alice:hunter2@db:5432/app')).toBe('postgres://alice:***@db:5432/app');
    expect(shownDatabaseUrl('postgres://alice@db/app?password=hunter2&sslmode=require')).toBe('postgres://alice@db/app?password=***&sslmode=require');
    expect(shownDatabaseUrl('postgres://alice@db/app?sslmode=verify-full&sslpassword=k3y&PASSWORD=x')).toBe(
      'postgres://alice@db/app?sslmode=verify-full&sslpassword=***&PASSWORD=***',
    );
    expect(shownDatabaseUrl('postgres://alice@db/app?pass%77ord=hunter2')).toBe('postgres://alice@db/app?pass%77ord=***');
    expect(shownDatabaseUrl('mysql://root@db:3306/app?ssl=true')).toBe('mysql://root@db:3306/app?ssl=true');
  });
});
