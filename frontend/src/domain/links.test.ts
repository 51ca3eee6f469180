import { describe, expect, it } from 'vitest';
import { FAILED_STATES, tasksLink } from './links';

describe('tasksLink', () => {
  it('builds the exact filter of a count', () => {
    expect(tasksLink({ workflow: 'wf1', state: 'FAILURE' })).toBe('/tasks?state=FAILURE&workflow=wf1');
    expect(tasksLink({ name: 'a.b', state: FAILED_STATES, workflow: 'w' })).toBe(
      '/tasks?name=a.b&state=FAILURE&state=LOST&state=REVOKED&state=REJECTED&workflow=w',
    );
    expect(tasksLink({ name: 'x', range: 'all' })).toBe('/tasks?name=x');
    expect(tasksLink({})).toBe('/tasks');
  });
});

describe('fan-out members', () => {
  it('links a fan-out to exactly its group or its parent’s children', () => {
    expect(tasksLink({ workflow: 'w1', name: 'proj.item', state: ['FAILURE', 'LOST'], group: 'g1' })).toBe(
      '/tasks?name=proj.item&state=FAILURE&state=LOST&workflow=w1&group=g1',
    );
    expect(tasksLink({ workflow: 'w1', parent: 'p1', group: null })).toBe('/tasks?workflow=w1&parent=p1');
  });
});
