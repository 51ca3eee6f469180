import { describe, expect, it } from 'vitest';
import { workflowTitle } from './shape';

describe('workflowTitle', () => {
  it("shows the server's shape name, else the root task's short name, else the id", () => {
    expect(workflowTitle({ id: 'abc', name: 'proj.score_item', shape: 'chord: score_item ×500 → summarize' })).toBe('chord: score_item ×500 → summarize');
    expect(workflowTitle({ id: 'abc', name: 'proj.tasks.only', shape: null })).toBe('only');
    expect(workflowTitle({ id: '0123456789', name: null })).toBe('01234567');
  });
});
