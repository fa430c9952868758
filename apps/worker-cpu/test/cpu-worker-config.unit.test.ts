import { ConfigError } from '@clipline/shared';
import { cpuConcurrency, loadCpuWorkerSettings } from '../src/cpu-worker-config.js';

describe('worker-cpu settings', () => {
  it('works with no variables at all', () => {
    expect(loadCpuWorkerSettings({})).toEqual({ renderConcurrency: undefined, renderPreset: 'veryfast', renderCrf: 20 });
  });

  it('reads the render settings', () => {
    const settings = loadCpuWorkerSettings({ RENDER_CONCURRENCY: '3', RENDER_PRESET: 'fast', RENDER_CRF: '23' });
    expect(settings).toEqual({ renderConcurrency: 3, renderPreset: 'fast', renderCrf: 23 });
    expect(Object.isFrozen(settings)).toBe(true);
  });

  it('names every bad variable', () => {
    let error: unknown;
    try {
      loadCpuWorkerSettings({ RENDER_CRF: '99', RENDER_PRESET: 'placebo', RENDER_CONCURRENCY: '0' });
    } catch (thrown) {
      error = thrown;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toMatch(/RENDER_CRF="99"/);
    expect(message).toMatch(/RENDER_PRESET="placebo"/);
    expect(message).toMatch(/RENDER_CONCURRENCY="0"/);
  });
});

describe('cpuConcurrency', () => {
  it('never analyses more videos at once than the pool has threads', () => {
    expect(cpuConcurrency(2, 8)).toEqual({ analyze: 2, render: 1 });
    expect(cpuConcurrency(8, 2)).toEqual({ analyze: 2, render: 4 });
    expect(cpuConcurrency(1, 1)).toEqual({ analyze: 1, render: 1 });
  });

  it('takes a configured render concurrency as it is', () => {
    expect(cpuConcurrency(4, 4, 3).render).toBe(3);
  });
});
