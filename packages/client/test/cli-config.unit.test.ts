import { CliConfigError, DEFAULT_API_URL, DEV_API_KEY, loadCliSettings } from '../src/cli/cli-config.js';

describe('loadCliSettings', () => {
  it('defaults to a local npm start with the dev key; an empty variable counts as unset', () => {
    expect(loadCliSettings({})).toEqual({ apiUrl: DEFAULT_API_URL, apiKey: DEV_API_KEY, color: true });
    expect(loadCliSettings({ CLIPLINE_URL: '', CLIPLINE_API_KEY: '', NO_COLOR: '' })).toEqual({ apiUrl: DEFAULT_API_URL, apiKey: DEV_API_KEY, color: true });
  });

  it('reads the URL, the key and NO_COLOR, and freezes the result', () => {
    const settings = loadCliSettings({ CLIPLINE_URL: 'https://clipline.internal/api', CLIPLINE_API_KEY: 'cl_abc', NO_COLOR: '1', DATABASE_URL: 'ignored' });
    expect(settings).toEqual({ apiUrl: 'https://clipline.internal/api', apiKey: 'cl_abc', color: false });
    expect(Object.isFrozen(settings)).toBe(true);
  });

  it('names every bad variable at once, and never echoes the key', () => {
    const secret = 'has a space';
    let thrown: unknown;
    try {
      loadCliSettings({ CLIPLINE_URL: 'ftp://example.com', CLIPLINE_API_KEY: secret });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(CliConfigError);
    const message = (thrown as Error).message;
    expect(message).toBe(
      'invalid environment:\n  CLIPLINE_URL="ftp://example.com": expected an http:// or https:// URL\n  CLIPLINE_API_KEY: expected 1-512 visible ASCII characters',
    );
    expect(message).not.toContain(secret);
  });

  it.each(['127.0.0.1:3000', 'not a url', 'file:///tmp/x'])('refuses CLIPLINE_URL=%j', (url) => {
    expect(() => loadCliSettings({ CLIPLINE_URL: url })).toThrow(/CLIPLINE_URL=.*expected an http:\/\/ or https:\/\/ URL/);
  });

  it('refuses a URL carrying a user and password without echoing them, and one with a query or fragment', () => {
    const withPassword = () => loadCliSettings({ CLIPLINE_URL: 'https://ops:hunter2@clipline.internal/' });
    expect(withPassword).toThrow(CliConfigError);
    expect(withPassword).toThrow(/CLIPLINE_URL: must not carry a user or password \(the API key goes in CLIPLINE_API_KEY\)/);
    expect(withPassword).not.toThrow(/hunter2/);
    // One that does not even parse is not shown either.
    const unparsable = () => loadCliSettings({ CLIPLINE_URL: 'https://ops:hunter2@clipline.internal:99999/' });
    expect(unparsable).toThrow(/CLIPLINE_URL: expected an http:\/\/ or https:\/\/ URL/);
    expect(unparsable).not.toThrow(/hunter2/);
    expect(() => loadCliSettings({ CLIPLINE_URL: 'http://h/?x=1' })).toThrow(/CLIPLINE_URL="http:\/\/h\/\?x=1": must not carry a query or fragment/);
    expect(() => loadCliSettings({ CLIPLINE_URL: 'http://h/#top' })).toThrow(/must not carry a query or fragment/);
  });
});
