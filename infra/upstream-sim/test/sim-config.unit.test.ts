import { loadSimSettings } from '../src/sim-config.js';

describe('simulator environment', () => {
  it('defaults to port 3900 with no faults', () => {
    expect(loadSimSettings({})).toMatchObject({ port: 3900, host: '127.0.0.1', config: undefined, seed: 1, apiKey: 'sim-key' });
  });

  it('takes the start faults as JSON in UPSTREAM_SIM_CONFIG', () => {
    const settings = loadSimSettings({
      UPSTREAM_SIM_PORT: '4100',
      UPSTREAM_SIM_CONFIG: '{"endpoints":{"openai.chat.completions":{"latency":{"kind":"fixed","ms":100},"errorRate":0.1}}}',
    });
    expect(settings.port).toBe(4100);
    expect(settings.config?.endpoints?.['openai.chat.completions']).toEqual({ latency: { kind: 'fixed', ms: 100 }, errorRate: 0.1 });
  });

  it('names the variable and the field when the config is not JSON or not valid', () => {
    expect(() => loadSimSettings({ UPSTREAM_SIM_CONFIG: '{nope' })).toThrow(/UPSTREAM_SIM_CONFIG.*not JSON/);
    expect(() => loadSimSettings({ UPSTREAM_SIM_CONFIG: '{"all":{"errorRate":3}}' })).toThrow(/UPSTREAM_SIM_CONFIG/);
    expect(() => loadSimSettings({ UPSTREAM_SIM_CONFIG: '{"all":{"latency":{"kind":"uniform","minMs":50,"maxMs":10}}}' })).toThrow(
      /minMs must not exceed maxMs/,
    );
    expect(() => loadSimSettings({ UPSTREAM_SIM_PORT: 'eighty' })).toThrow(/UPSTREAM_SIM_PORT/);
  });
});
