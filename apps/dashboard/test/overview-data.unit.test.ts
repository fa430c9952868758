import { percentile, perMinute } from '../src/overview/overview-data.js';
import { failureGroupOf, failureMatches } from '@clipline/shared';

const minute = 60_000;

describe('perMinute', () => {
  it('anchors BullMQ data at prevTS: the jobs since belong to that minute, data[0] to the one before', () => {
    const now = 1_000 * minute + 30_000;
    const series = perMinute({ meta: { count: 12, prevTS: 998 * minute + 5_000, prevCount: 9 }, data: [4, 0, 2] }, now);
    expect(series.minutes).toHaveLength(60);
    expect(series.minutes.at(-1)).toBe(1_000 * 60);
    // minute 1000: nothing finished since; 999: nothing; 998: 3 since prevTS; 997: 4; 996: 0; 995: 2.
    expect(series.values.slice(-6)).toEqual([2, 0, 4, 3, 0, 0]);
    expect(series.values.reduce((a, b) => a + b, 0)).toBe(9);
  });

  it('is all zeros before any job finished', () => {
    expect(perMinute({ meta: { count: 0, prevTS: 0, prevCount: 0 }, data: [] }, 5 * minute).values.every((value) => value === 0)).toBe(true);
  });

  it('drops minutes older than the hour shown', () => {
    const series = perMinute({ meta: { count: 1, prevTS: 10 * minute, prevCount: 0 }, data: [] }, 200 * minute);
    expect(series.values.every((value) => value === 0)).toBe(true);
  });
});

describe('percentile', () => {
  it('takes the nearest rank', () => {
    const values = Array.from({ length: 100 }, (_, index) => 100 - index);
    expect(percentile(values, 0.5)).toBe(50);
    expect(percentile(values, 0.95)).toBe(95);
    expect(percentile([7], 0.95)).toBe(7);
    expect(percentile([], 0.5)).toBeNull();
  });
});

describe('failure reasons', () => {
  it('groups by the first line, bounded, and a group reason matches its own jobs as a filter', () => {
    const reason = `${'x'.repeat(300)}\nstack`;
    expect(failureGroupOf(reason)).toHaveLength(200);
    expect(failureMatches(reason, failureGroupOf(reason), 'group')).toBe(true);
    expect(failureGroupOf(undefined)).toBe('no reason recorded');
    expect(failureGroupOf('')).toBe('no reason recorded');
    // Never an empty group (an empty filter means every failed job): the first line with words, trimmed.
    expect(failureGroupOf('\n  EPIPE on write\n    at stack')).toBe('EPIPE on write');
    expect(failureGroupOf('\n \n')).toBe('no reason recorded');
  });

  it('matches a group exactly: another group holding its words, or a longer first line, is not in it; a failure without reason is in its own', () => {
    expect(failureMatches('timeout', 'timeout', 'group')).toBe(true);
    expect(failureMatches('timeout\n    at stack', 'timeout', 'group')).toBe(true);
    expect(failureMatches('upload timeout after 30s', 'timeout', 'group')).toBe(false);
    expect(failureMatches('', 'no reason recorded', 'group')).toBe(true);
    expect(failureMatches(undefined, 'no reason recorded', 'group')).toBe(true);
    // The same filter as a substring reaches both.
    expect(failureMatches('upload timeout after 30s', 'timeout')).toBe(true);
  });

  it('matches a case-sensitive substring, and everything without a filter', () => {
    expect(failureMatches('upstream Timeout', 'Timeout')).toBe(true);
    expect(failureMatches('upstream Timeout', 'timeout')).toBe(false);
    expect(failureMatches('anything', null)).toBe(true);
    expect(failureMatches(undefined, 'x')).toBe(false);
  });
});
