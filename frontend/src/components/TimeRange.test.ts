import { describe, expect, it } from 'vitest';
import { rangeFilter } from './TimeRange';

describe('rangeFilter', () => {
  it('passes a custom window through and ignores since/until otherwise', () => {
    const custom = new URLSearchParams('range=custom&since=2026-01-01T00:00:00.000Z&until=2026-01-02T00:00:00.000Z');
    expect(rangeFilter(custom)).toEqual({ since: '2026-01-01T00:00:00.000Z', until: '2026-01-02T00:00:00.000Z' });
    expect(rangeFilter(new URLSearchParams('since=2026-01-01T00:00:00.000Z'))).toEqual({ since: undefined });
    const preset = rangeFilter(new URLSearchParams('range=1h'));
    expect(Date.now() - Date.parse(preset.since ?? '')).toBeGreaterThanOrEqual(3_600_000 - 5);
    expect(Date.now() - Date.parse(preset.since ?? '')).toBeLessThan(3_600_000 + 5_000);
  });
});
