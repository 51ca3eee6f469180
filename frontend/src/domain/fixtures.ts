// Small builders for workflow fixtures used by unit tests and the benchmark page.
import type { WorkflowDetail, WorkflowNode } from '../api/types';

export function node(id: string, over: Partial<WorkflowNode> = {}): WorkflowNode {
  return {
    id, name: 'app.tasks.work', state: 'SUCCESS', attempts: 1, worker: 'w1@host', queue: 'celery',
    sent_at: null, received_at: null, started_at: null, finished_at: null, runtime_ms: null,
    exception_type: null, parent_id: null, group_id: null, group_index: null, plumbing: false,
    attempt_spans: null, collapsed: null, skipped_by: null, skipped_reason: null, ...over,
  };
}

export function workflow(nodes: WorkflowNode[], over: Partial<WorkflowDetail> = {}): WorkflowDetail {
  const counts: Record<string, number> = {};
  for (const n of nodes) counts[n.state] = (counts[n.state] ?? 0) + 1;
  return {
    id: nodes[0]?.id ?? 'wf', name: nodes[0]?.name ?? null, root_id: nodes[0]?.id ?? null, state: 'SUCCESS',
    task_count: nodes.length, counts, started_at: null, finished_at: null, nodes, edges: [], groups: [],
    collapsed_tasks: 0, events_may_be_missing: false, ...over,
  };
}

/** root → chord(group of `width` × item, 1 in `failEvery` failing) → callback. */
export function chordWorkflow(width: number, failEvery = 0): WorkflowDetail {
  const t = Date.parse('2026-01-01T00:00:00Z');
  const iso = (ms: number) => new Date(t + ms).toISOString();
  const nodes: WorkflowNode[] = [node('root', { name: 'app.prepare', sent_at: iso(0), started_at: iso(5), finished_at: iso(20) })];
  const members: string[] = [];
  for (let i = 0; i < width; i++) {
    const id = `item-${i}`;
    members.push(id);
    const failed = failEvery > 0 && i % failEvery === failEvery - 1;
    nodes.push(node(id, {
      name: 'app.process_item', state: failed ? 'FAILURE' : 'SUCCESS', parent_id: 'root', group_id: 'g1',
      group_index: i, worker: `w${i % 4}@host`, sent_at: iso(20), started_at: iso(25 + i), finished_at: iso(40 + i),
      exception_type: failed ? 'ValueError' : null,
    }));
  }
  nodes.push(node('cb', { name: 'app.aggregate', state: failEvery ? 'PLANNED' : 'SUCCESS', parent_id: 'root' }));
  return workflow(nodes, {
    edges: [
      ...members.map((m) => ({ source: 'root', target: m, kind: 'chain' })),
      ...members.map((m) => ({ source: m, target: 'cb', kind: 'chord' })),
    ],
    groups: [{ id: 'g1', kind: 'chord' as const, members, callback: 'cb' }],
  });
}
