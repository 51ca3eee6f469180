// React Flow node renderers: task, collapsed fan-out, chord join and group bracket.
import { Handle, Position, type NodeProps, type Node } from '@xyflow/react';
import { memo } from 'react';
import { fanoutSummary, type ViewNode } from '../../domain/graph';
import { isFailed, isInactive, sortedCounts, stateClass } from '../../domain/states';
import { formatDuration } from '../../domain/time';
import { exceptionName } from '../../domain/values';
import type { WorkflowNode } from '../../api/types';

export interface TaskNodeData extends Record<string, unknown> {
  view: ViewNode;
  task: WorkflowNode | undefined;
  selected: boolean;
  onToggle?: (key: string) => void;
}
export interface BracketData extends Record<string, unknown> {
  kind: 'group' | 'chord';
  count: number;
  expandedKey: string | null;
  onToggle?: (key: string) => void;
}

const handles = (
  <>
    <Handle type="target" position={Position.Left} isConnectable={false} />
    <Handle type="source" position={Position.Right} isConnectable={false} />
  </>
);

export const TaskNode = memo(function TaskNode({ data }: NodeProps<Node<TaskNodeData>>) {
  const { view, task, selected } = data;
  const state = task?.state ?? view.state;
  const cls = `wf-node task st-border-${stateClass(state)}${isInactive(state) ? ' inactive' : ''}${isFailed(state) ? ' failed' : ''}${selected ? ' selected' : ''}`;
  return (
    <div className={cls} data-task-id={view.taskId ?? undefined} data-state={state}>
      {handles}
      <div className="wf-name" title={view.label}>{shortName(view.label)}</div>
      <div className="wf-meta">
        <span className={`badge st-${stateClass(state)}`}>{state}</span>
        {task?.runtime_ms != null && <span>{formatDuration(task.runtime_ms)}</span>}
        {task && task.attempts > 1 && <span title="attempts">{task.attempts} attempts</span>}
        {task?.exception_type && <span className="exc-type">{exceptionName(task.exception_type)}</span>}
      </div>
    </div>
  );
});

export const FanoutNode = memo(function FanoutNode({ data }: NodeProps<Node<TaskNodeData>>) {
  const { view, selected } = data;
  const counts = view.counts ?? {};
  const total = view.members?.length ?? 0;
  return (
    <button
      type="button"
      className={`wf-node fanout st-border-${stateClass(view.state)}${isFailed(view.state) ? ' failed' : ''}${selected ? ' selected' : ''}`}
      onClick={() => data.onToggle?.(view.id)}
      title="Expand this fan-out"
      data-fanout={view.id}
    >
      {handles}
      <div className="wf-name">{shortName(view.label)}</div>
      <div className="wf-fan-summary">{fanoutSummary(counts)}</div>
      <div className="countsbar">
        {sortedCounts(counts).map(([s, n]) => (
          <span key={s} className={`seg bg-${stateClass(s)}`} style={{ width: `${(100 * n) / Math.max(1, total)}%` }} />
        ))}
      </div>
    </button>
  );
});

export const JoinNode = memo(function JoinNode({ data }: NodeProps<Node<TaskNodeData>>) {
  const { view } = data;
  const complete = view.done === view.total;
  return (
    <div className={`wf-node join${complete ? ' complete' : ''}`} title="Chord: the callback runs when every header task succeeded">
      {handles}
      <div>
        <strong>{view.done} of {view.total}</strong> done → {shortName(view.callbackName ?? 'callback')}
      </div>
    </div>
  );
});

export const BracketNode = memo(function BracketNode({ data }: NodeProps<Node<BracketData>>) {
  return (
    <div className={`wf-bracket ${data.kind}`}>
      {handles}
      <span className="wf-bracket-label">
        {data.kind} · {data.count}
        {data.expandedKey && (
          <button type="button" className="link" onClick={() => data.onToggle?.(data.expandedKey ?? '')}>
            collapse
          </button>
        )}
      </span>
    </div>
  );
});

/** `proj.app.tasks.process_item` → `tasks.process_item`: the module path's tail keeps nodes narrow. */
export function shortName(name: string): string {
  const parts = name.split('.');
  return parts.length > 2 ? parts.slice(-2).join('.') : name;
}

export const nodeTypes = { task: TaskNode, fanout: FanoutNode, join: JoinNode, bracket: BracketNode };
