import { describe, expect, it } from 'vitest';
import { formatDuration } from './time';
import { attemptPhases, phasesText } from './waiting';

const at = (s: number) => new Date(Date.UTC(2026, 0, 1) + s).toISOString();

describe('waiting', () => {
  it('splits an attempt into queued, reserved and run', () => {
    const [p] = attemptPhases(at(0), [{ received_at: at(721), started_at: at(750), finished_at: at(755) }]);
    expect(p).toEqual({ queued: 721, reserved: 29, run: 5 });
    expect(phasesText(p!, (ms) => formatDuration(ms))).toBe('queued 721 ms · reserved 29 ms · run 5 ms');
  });
  it('queues a retry from when the attempt before it ended', () => {
    const ps = attemptPhases(at(0), [
      { received_at: at(10), started_at: at(20), finished_at: at(100) },
      { received_at: at(300), started_at: at(300), finished_at: at(310), runtime_ms: 9.5 },
    ]);
    expect(ps[1]).toEqual({ queued: 200, reserved: 0, run: 9.5 });
  });
  it('leaves out what is unknown', () => {
    const [p] = attemptPhases(null, [{ received_at: at(10), started_at: null }]);
    expect(p).toEqual({ queued: null, reserved: null, run: null });
    expect(phasesText(p!, String)).toBe('');
  });
});
