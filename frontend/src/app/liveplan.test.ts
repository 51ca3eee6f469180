import { describe, expect, it } from 'vitest';
import { invalidationPlan, mergeChanges, taskDetailAffected } from './liveplan';

describe('live invalidation', () => {
  it('merges batches without duplicates', () => {
    expect(mergeChanges({ tasks: ['a'] }, { tasks: ['a', 'b'], workers: ['w'] })).toEqual({ tasks: ['a', 'b'], workers: ['w'] });
    expect(mergeChanges({}, {})).toEqual({});
  });
  it('invalidates only what changed', () => {
    expect(invalidationPlan({ workers: ['w'] }).prefixes).toEqual([['workers'], ['stuck']]);
    const p = invalidationPlan({ tasks: ['t1'], workflows: ['wf'] });
    expect(p.prefixes).toEqual([['tasks'], ['failures'], ['stats'], ['task-names'], ['stuck'], ['workflows']]);
    expect([...p.taskIds]).toEqual(['t1']);
    expect(invalidationPlan({}).prefixes).toEqual([]);
  });
  it('refreshes a task page when the task or a child it lists changed', () => {
    const parent = { child_tasks: [{ id: 'c1' }, { id: 'c2' }] };
    expect(taskDetailAffected('p', parent, new Set(['p']))).toBe(true);
    expect(taskDetailAffected('p', parent, new Set(['c2']))).toBe(true);
    expect(taskDetailAffected('p', parent, new Set(['x']))).toBe(false);
    expect(taskDetailAffected('p', undefined, new Set(['c1']))).toBe(false);
  });
});
