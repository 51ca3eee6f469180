import { describe, expect, it } from 'vitest';
import { isFailed, isInactive, rollUp, sortedCounts, stateClass } from './states';

describe('states', () => {
  it('classifies failure-like and inactive states', () => {
    expect(isFailed('FAILURE')).toBe(true);
    expect(isFailed('LOST')).toBe(true);
    expect(isFailed('SUCCESS')).toBe(false);
    expect(isInactive('PLANNED')).toBe(true);
    expect(isInactive('SKIPPED')).toBe(true);
    expect(isInactive('STARTED')).toBe(false);
  });
  it('maps unknown states to a neutral class', () => {
    expect(stateClass('SUCCESS')).toBe('success');
    expect(stateClass('WEIRD')).toBe('unknown');
  });
  it('orders counts problems first and drops zeros', () => {
    expect(sortedCounts({ SUCCESS: 5, FAILURE: 1, STARTED: 0, PENDING: 2 })).toEqual([
      ['FAILURE', 1], ['PENDING', 2], ['SUCCESS', 5],
    ]);
  });
  it('rolls a fan-out up to its worst state', () => {
    expect(rollUp({ SUCCESS: 197, FAILURE: 3 })).toBe('FAILURE');
    expect(rollUp({ SUCCESS: 10, STARTED: 2 })).toBe('STARTED');
    expect(rollUp({ SUCCESS: 10 })).toBe('SUCCESS');
    expect(rollUp({ PLANNED: 4 })).toBe('PLANNED');
    expect(rollUp({})).toBe('PENDING');
  });
});
