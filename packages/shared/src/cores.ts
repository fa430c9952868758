/**
 * How many cores this process may actually keep busy: the CPUs it is allowed to run on
 * (`os.availableParallelism()`, which follows the affinity mask) capped by the CPU quota of its
 * control group, as a container limit (`docker --cpus`, a Kubernetes CPU limit) sets it. A
 * quota is read as cores rounded up: 1.5 CPUs of quota can keep two threads partly busy.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';

/** Where the kernel states the quota: cgroup v2 first, then the two files of cgroup v1. */
export const CGROUP_FILES = {
  v2Max: '/sys/fs/cgroup/cpu.max',
  v1Quota: '/sys/fs/cgroup/cpu/cpu.cfs_quota_us',
  v1Period: '/sys/fs/cgroup/cpu/cpu.cfs_period_us',
} as const;

/**
 * Cores a cgroup v2 `cpu.max` allows (`<quota> <period>` in microseconds, or `max <period>`
 * for no limit): quota ÷ period rounded up, or undefined when unlimited or unreadable.
 */
export function coresOfCpuMax(contents: string): number | undefined {
  const [quota, period] = contents.trim().split(/\s+/);
  if (quota === undefined || quota === 'max') return undefined;
  return coresOfQuota(Number(quota), Number(period ?? 100_000));
}

/**
 * Cores a cgroup v1 CFS quota allows (`cpu.cfs_quota_us` ÷ `cpu.cfs_period_us`, rounded up);
 * undefined for -1 (no limit) or anything unreadable.
 */
export function coresOfCfsQuota(quotaContents: string, periodContents: string): number | undefined {
  return coresOfQuota(Number(quotaContents.trim()), Number(periodContents.trim()));
}

function coresOfQuota(quota: number, period: number): number | undefined {
  if (!Number.isFinite(quota) || !Number.isFinite(period) || quota <= 0 || period <= 0) return undefined;
  return Math.max(1, Math.ceil(quota / period));
}

/** Reads a file's text, or undefined when it is not there (no cgroup, another version of it). */
export type TextReader = (file: string) => string | undefined;

const readText: TextReader = (file) => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
};

/** The cgroup's CPU quota in cores (rounded up), or undefined when there is none. */
export function cgroupCpuLimit(read: TextReader = readText): number | undefined {
  const v2 = read(CGROUP_FILES.v2Max);
  if (v2 !== undefined) return coresOfCpuMax(v2);
  const quota = read(CGROUP_FILES.v1Quota);
  const period = read(CGROUP_FILES.v1Period);
  if (quota === undefined || period === undefined) return undefined;
  return coresOfCfsQuota(quota, period);
}

export interface UsableCoresSources {
  /** CPUs the process may run on. @defaultValue `os.availableParallelism()` */
  parallelism?: number;
  /** How the cgroup files are read. @defaultValue from the file system */
  read?: TextReader;
}

/**
 * Cores this process may use: min(available CPUs, cgroup CPU quota rounded up), at least 1.
 * The defaults of the worker-cpu pool and of render concurrency derive from it.
 */
export function usableCores(sources: UsableCoresSources = {}): number {
  const parallelism = sources.parallelism ?? os.availableParallelism();
  const limit = cgroupCpuLimit(sources.read);
  return Math.max(1, Math.min(parallelism, limit ?? Number.POSITIVE_INFINITY));
}
