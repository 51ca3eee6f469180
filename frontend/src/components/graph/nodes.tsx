// React Flow node renderers: task, collapsed fan-out, chord join and group bracket.
import { Handle, Position, type NodeProps, type Node } from '@xyflow/react';
import { memo } from 'react';
import { Link } from 'react-router';
import type { ViewNode } from '../../domain/graph';
import { shortTaskName } from '../../domain/args';
import { FAILED_STATES, RUNNING_STATES, tasksLink } from '../../domain/links';
import { isFailed, isInactive, sortedCounts, stateClass } from '../../domain/states';
import { formatDuration } from '../../domain/time';
import { exceptionName } from '../../domain/values';
import type { WorkflowNode } from '../../api/types';
import { scheduledFor } from '../../domain/schedule';
import { ScheduledBadge, ScheduledFor } from '../Scheduled';

export interface TaskNodeData extends Record<string, unknown> {
  view: ViewNode;
  task: WorkflowNode | undefined;
  selected: boolean;
  workflowId?: string;
  /** The task's argument digest, when siblings share a name and need telling apart. */
  digest?: string;
  onToggle?: (key: string) => void;
  onOpenFan?: (key: string) => void;
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
  const due = task ? scheduledFor(task) : null;
  const cls = `wf-node task st-border-${stateClass(state)}${isInactive(state) ? ' inactive' : ''}${isFailed(state) ? ' failed' : ''}${selected ? ' selected' : ''}`;
  return (
    <div className={cls} data-task-id={view.taskId ?? undefined} data-state={state}>
      {handles}
      <div className="wf-name" title={data.digest ? `${view.label}(${data.digest})` : view.label}>
        {/* Siblings told apart by their arguments: the call's short name leaves them the room. */}
        {data.digest ? shortTaskName(view.label) : shortName(view.label)}
        {data.digest && <span className="wf-digest">({data.digest})</span>}
      </div>
      <div className="wf-meta" title={task?.skipped_reason ?? undefined}>
        {due ? <ScheduledBadge state={state} eta={due} /> : <span className={`badge st-${stateClass(state)}`}>{state}</span>}
        {due && <ScheduledFor eta={due} compact />}
        {task?.runtime_ms != null && <span>{formatDuration(task.runtime_ms)}</span>}
        {task && task.attempts > 1 && <span title="attempts">{task.attempts} attempts</span>}
        {task?.exception_type && <span className="exc-type" title={task.exception_type}>{exceptionName(task.exception_type)}</span>}
      </div>
    </div>
  );
});

export const FanoutNode = memo(function FanoutNode({ data }: NodeProps<Node<TaskNodeData>>) {
  const { view, selected } = data;
  const counts = view.counts ?? {};
  const total = view.memberCount ?? view.members?.length ?? 0;
  const failed = FAILED_STATES.reduce((n, s) => n + (counts[s] ?? 0), 0);
  const running = RUNNING_STATES.reduce((n, s) => n + (counts[s] ?? 0), 0);
  // A fan-out's members share a group or a parent: its counts open exactly them.
  const base = { workflow: data.workflowId, name: view.memberName ?? undefined, group: view.memberGroup, parent: view.memberParent };
  // Links and buttons inside a node must not also start a pan or the node's own click (expand).
  const stop = (e: React.SyntheticEvent) => e.stopPropagation();
  return (
    <div
      className={`wf-node fanout st-border-${stateClass(view.state)}${isFailed(view.state) ? ' failed' : ''}${selected ? ' selected' : ''}`}
      title={view.serverCollapsed ? 'Collapsed by the server: “list” shows its failed and running members' : 'Click to expand this fan-out'}
      data-fanout={view.id}
    >
      {handles}
      <div className="wf-name">{shortName(view.label)}</div>
      <div className="wf-fan-summary">
        <span>×{total}</span>
        {failed > 0 && (
          <Link className="nodrag nopan fan-failed" to={tasksLink({ ...base, state: FAILED_STATES })} onClick={stop}>
            {failed.toLocaleString()} failed
          </Link>
        )}
        {running > 0 && (
          <Link className="nodrag nopan" to={tasksLink({ ...base, state: RUNNING_STATES })} onClick={stop}>
            {running.toLocaleString()} running
          </Link>
        )}
        {data.onOpenFan && (
          <button type="button" className="link nodrag nopan fan-list" onClick={(e) => { stop(e); data.onOpenFan?.(view.id); }}>
            list
          </button>
        )}
      </div>
      <div className="countsbar" aria-hidden="true">
        {sortedCounts(counts).map(([s, n]) => (
          <span key={s} className={`seg bg-${stateClass(s)}`} style={{ width: `${(100 * n) / Math.max(1, total)}%` }} />
        ))}
      </div>
    </div>
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
        {data.kind} · {data.count.toLocaleString()} tasks
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
