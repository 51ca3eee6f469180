import { describe, expect, it } from 'vitest';
import { isOverdue, scheduledFor } from './schedule';
import { compactTime } from '../components/Scheduled';

describe('scheduledFor', () => {
  it('is the ETA of a task still waiting for it', () => {
    expect(scheduledFor({ eta: '2026-12-07T09:00:00Z', state: 'RECEIVED' })).toBe('2026-12-07T09:00:00Z');
    expect(scheduledFor({ eta: '2026-12-07T09:00:00Z', state: 'PENDING' })).toBe('2026-12-07T09:00:00Z');
    expect(scheduledFor({ eta: '2026-12-07T09:00:00Z', state: 'RETRY' })).toBe('2026-12-07T09:00:00Z');
  });
  it('is null once the task runs or ended, or without an ETA', () => {
    expect(scheduledFor({ eta: '2026-12-07T09:00:00Z', state: 'STARTED' })).toBeNull();
    expect(scheduledFor({ eta: '2026-12-07T09:00:00Z', state: 'SUCCESS' })).toBeNull();
    expect(scheduledFor({ eta: null, state: 'RECEIVED' })).toBeNull();
    expect(scheduledFor({ state: 'RECEIVED' })).toBeNull();
  });
  it('knows an overdue ETA', () => {
    const now = Date.parse('2026-12-07T09:00:00Z');
    expect(isOverdue('2026-12-07T08:59:59Z', now)).toBe(true);
    expect(isOverdue('2026-12-07T09:00:01Z', now)).toBe(false);
    expect(isOverdue('not a time', now)).toBe(false);
  });
  it('fits a graph node: the time alone today, month-day and minutes another day', () => {
    expect(compactTime('2026-12-07 09:00:00.000', '2026-12-07 08:00:00.000')).toBe('09:00:00');
    expect(compactTime('2026-12-07 09:00:00.000Z', '2026-12-07 08:00:00.000Z')).toBe('09:00:00Z');
    expect(compactTime('2026-12-08 09:00:00.000', '2026-12-07 08:00:00.000')).toBe('12-08 09:00');
    expect(compactTime('in 5m', 'just now')).toBe('in 5m');
  });
});
