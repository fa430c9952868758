import { ConfigError, DEV_API_KEY, loadConfig } from '@clipline/shared';

describe('loadConfig', () => {
  it('starts with no variables at all, on the local defaults', () => {
    const config = loadConfig({});
    expect(config.redisUrl).toBe('redis://127.0.0.1:6379');
    expect(config.port).toBe(3000);
    expect(config.dashboardPort).toBe(3001);
    expect(config.apiKeys).toEqual([DEV_API_KEY]);
    expect(config.fileSourceRoots).toBe('any');
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

  it('refuses dev credentials and missing secrets in production', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/API_KEYS: must be set in production[\s\S]*DASHBOARD_PASSWORD: must be set/);
    expect(() => loadConfig({ NODE_ENV: 'production', API_KEYS: DEV_API_KEY, DASHBOARD_PASSWORD: 'x-strong' })).toThrow(
      /dev key is refused/,
    );
    expect(() => loadConfig({ NODE_ENV: 'production', API_KEYS: 'k1', DASHBOARD_PASSWORD: 'clipline' })).toThrow(/dev password is refused/);
    expect(() => loadConfig({ NODE_ENV: 'production', API_KEYS: 'k1', DASHBOARD_PASSWORD: 'p4ss' })).toThrow(/WEBHOOK_SECRET: must be set/);
    const config = loadConfig({
      NODE_ENV: 'production', API_KEYS: 'k1', DASHBOARD_PASSWORD: 'p4ss', WEBHOOK_SECRET: 'a-long-webhook-secret',
      ACCOUNTS_KEYRING: `k1:${Buffer.alloc(32, 7).toString('base64')}`,
    });
    expect(config.fileSourceRoots).toEqual([]);
    expect(config.allowPrivateSources).toBe(false);
  });
});
