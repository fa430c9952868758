import os from 'node:os';
import { CGROUP_FILES, cgroupCpuLimit, coresOfCfsQuota, coresOfCpuMax, usableCores, type TextReader } from '@clipline/shared';

/** A file system holding exactly `files`. */
const filesystem =
  (files: Record<string, string>): TextReader =>
  (file) =>
    files[file];

describe('coresOfCpuMax (cgroup v2 cpu.max)', () => {
  it('reads quota ÷ period, rounded up', () => {
    expect(coresOfCpuMax('200000 100000\n')).toBe(2);
    expect(coresOfCpuMax('150000 100000\n')).toBe(2);
    expect(coresOfCpuMax('50000 100000')).toBe(1);
    expect(coresOfCpuMax('400000 50000')).toBe(8);
  });

  it('takes "max" as no limit', () => {
    expect(coresOfCpuMax('max 100000\n')).toBeUndefined();
    expect(coresOfCpuMax('max')).toBeUndefined();
  });

  it('ignores what it cannot read', () => {
    expect(coresOfCpuMax('')).toBeUndefined();
    expect(coresOfCpuMax('lots 100000')).toBeUndefined();
    expect(coresOfCpuMax('100000 0')).toBeUndefined();
  });

  it('never says less than one core', () => {
    expect(coresOfCpuMax('1000 100000')).toBe(1);
  });
});

describe('coresOfCfsQuota (cgroup v1)', () => {
  it('reads cfs_quota_us ÷ cfs_period_us, rounded up', () => {
    expect(coresOfCfsQuota('300000\n', '100000\n')).toBe(3);
    expect(coresOfCfsQuota('250000', '100000')).toBe(3);
  });

  it('takes -1 as no limit', () => {
    expect(coresOfCfsQuota('-1\n', '100000\n')).toBeUndefined();
  });
});

describe('usableCores', () => {
  it('is capped by a cgroup v2 quota', () => {
    expect(usableCores({ parallelism: 8, read: filesystem({ [CGROUP_FILES.v2Max]: '150000 100000\n' }) })).toBe(2);
  });

  it('keeps the available CPUs when the quota allows more or there is none', () => {
    expect(usableCores({ parallelism: 2, read: filesystem({ [CGROUP_FILES.v2Max]: '800000 100000\n' }) })).toBe(2);
    expect(usableCores({ parallelism: 4, read: filesystem({ [CGROUP_FILES.v2Max]: 'max 100000\n' }) })).toBe(4);
    expect(usableCores({ parallelism: 6, read: filesystem({}) })).toBe(6);
  });

  it('falls back to cgroup v1 when there is no cpu.max', () => {
    const v1 = filesystem({ [CGROUP_FILES.v1Quota]: '100000\n', [CGROUP_FILES.v1Period]: '100000\n' });
    expect(cgroupCpuLimit(v1)).toBe(1);
    expect(usableCores({ parallelism: 16, read: v1 })).toBe(1);
    expect(usableCores({ parallelism: 16, read: filesystem({ [CGROUP_FILES.v1Quota]: '-1\n', [CGROUP_FILES.v1Period]: '100000\n' }) })).toBe(16);
  });

  it('prefers cgroup v2 when both are there', () => {
    const both = filesystem({ [CGROUP_FILES.v2Max]: 'max 100000', [CGROUP_FILES.v1Quota]: '100000', [CGROUP_FILES.v1Period]: '100000' });
    expect(usableCores({ parallelism: 4, read: both })).toBe(4);
  });

  it('is at least 1', () => {
    expect(usableCores({ parallelism: 0, read: filesystem({}) })).toBe(1);
  });

  it('on this machine, lies between 1 and the available CPUs', () => {
    const cores = usableCores();
    expect(cores).toBeGreaterThanOrEqual(1);
    expect(cores).toBeLessThanOrEqual(os.availableParallelism());
  });
});
