// A workflow's display name: its shape ("chord: score_item ×500 → summarize"), which the server names once
// with the workflow's summary (core/shape.py) so the Workflows list and the workflow page always agree;
// a workflow without a shape (a lone task, a plain tree of tasks) by its root task's short name.
import type { WorkflowSummary } from '../api/types';
import { shortTaskName } from './args';

export function workflowTitle(wf: Pick<WorkflowSummary, 'id' | 'name' | 'shape'>): string {
  if (wf.shape) return wf.shape;
  return wf.name ? shortTaskName(wf.name) : wf.id.slice(0, 8);
}
