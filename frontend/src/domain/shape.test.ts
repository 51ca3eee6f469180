import { describe, expect, it } from 'vitest';
import { chordWorkflow, node, workflow } from './fixtures';
import { workflowShapeName } from './shape';

describe('workflowShapeName', () => {
  it('names a chord by its header and callback', () => {
    expect(workflowShapeName(chordWorkflow(500))).toBe('chord: process_item ×500 → aggregate');
  });
  it('names a chain by its steps, a plain task by its name', () => {
    const wf = workflow([node('a', { name: 'x.fetch' }), node('b', { name: 'x.parse' }), node('c', { name: 'x.store' })], {
      edges: [{ source: 'a', target: 'b', kind: 'chain' }, { source: 'b', target: 'c', kind: 'chain' }],
    });
    expect(workflowShapeName(wf)).toBe('chain: fetch → parse → store');
    expect(workflowShapeName(workflow([node('a', { name: 'x.only' })]))).toBe('only');
  });
  it('names a group of mixed tasks by how many names it has', () => {
    const wf = workflow([node('a', { name: 'x.a' }), node('b', { name: 'x.b' })], { groups: [{ id: 'g', kind: 'group', members: ['a', 'b'], callback: null }] });
    expect(workflowShapeName(wf)).toBe('group: 2 tasks ×2');
  });
});
