import { describe, expect, it } from 'vitest';
import { durationBetween, formatDuration, formatTime, rangeToSince } from './time';

describe('time', () => {
  it('formats UTC with a Z and relative with ago', () => {
    expect(formatTime('2026-01-02T03:04:05.678Z', 'utc')).toBe('2026-01-02 03:04:05.678Z');
    const now = Date.parse('2026-01-02T03:05:05Z');
    expect(formatTime('2026-01-02T03:04:05Z', 'relative', now)).toBe('1m 00s ago');
    expect(formatTime(null, 'utc')).toBe('—');
    expect(formatTime('garbage', 'local')).toBe('—');
  });
  it('formats durations at every scale', () => {
    expect(formatDuration(0.42)).toBe('<1 ms');
    expect(formatDuration(0)).toBe('0 ms');
    expect(formatDuration(12.4)).toBe('12 ms');
    expect(formatDuration(1250)).toBe('1.25 s');
    expect(formatDuration(184_000)).toBe('3m 04s');
    expect(formatDuration(2 * 3_600_000 + 5 * 60_000)).toBe('2h 05m');
    expect(formatDuration(null)).toBe('—');
  });
  it('computes durations and range presets', () => {
    expect(durationBetween('2026-01-01T00:00:00Z', '2026-01-01T00:00:01.5Z')).toBe(1500);
    expect(durationBetween(null, '2026-01-01T00:00:00Z')).toBeNull();
    expect(rangeToSince('1h', Date.parse('2026-01-01T01:00:00Z'))).toBe('2026-01-01T00:00:00.000Z');
    expect(rangeToSince('bogus')).toBeUndefined();
    expect(rangeToSince(null)).toBeUndefined();
  });
});
