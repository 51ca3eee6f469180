// Workflow: graph and Gantt of one workflow, selection shared between them and a task panel.
import { useCallback, useEffect, useMemo } from 'react';
import { Link, useParams } from 'react-router';
import type { WorkflowDetail } from '../api/types';
import { useTask, useTaskList, useWorkflow, useWorkflowMembers } from '../queries';
import { useTitle } from '../app/title';
import { argDigest, callText } from '../domain/args';
import { workflowTitle } from '../domain/shape';
import { ScheduledBadge, ScheduledFor } from '../components/Scheduled';
import { FAILED_STATES, RUNNING_STATES } from '../domain/links';
import type { ViewGraph } from '../domain/graph';
import { useUrlState } from '../app/urlstate';
import { CountsBar, Duration, Empty, ErrorBanner, Loading, StateBadge, Time } from '../components/common';
import { Gantt } from '../components/Gantt';
import { WorkflowGraph } from '../components/graph/WorkflowGraph';
import { warmLayoutEngine } from '../components/graph/layoutClient';
import { TaskView } from './TaskPage';
import { ganttLayout, type LaneMode } from '../domain/gantt';
import { buildViewGraph } from '../domain/graph';
import { sortedCounts } from '../domain/states';
import { durationBetween } from '../domain/time';
import { tasksLink } from '../domain/links';
import { exceptionName } from '../domain/values';

export function WorkflowPage() {
  const { id = '' } = useParams();
  const [params, set] = useUrlState();
  const plumbing = params.get('plumbing') === '1';
  useEffect(() => warmLayoutEngine(), []);
  const q = useWorkflow(id, plumbing);
  useTitle(q.data ? `${q.data.scheduled_for ? 'SCHEDULED' : q.data.state} ${workflowTitle(q.data)}` : q.error ? 'Workflow not found' : 'Workflow');
  if (q.isPending) return <Loading what="workflow" />;
  if (q.error) {
    return (
      <div className="page">
        <ErrorBanner error={q.error} what={`workflow ${id}`} />
        <Empty title="Workflow not found"><Link to="/workflows">Back to workflows</Link></Empty>
      </div>
    );
  }
  return <WorkflowView wf={q.data} params={params} set={set} />;
}

function WorkflowView({ wf, params, set }: { wf: WorkflowDetail; params: URLSearchParams; set: ReturnType<typeof useUrlState>[1] }) {
  const selected = params.get('task');
  const lanes: LaneMode = params.get('lanes') === 'worker' ? 'worker' : 'task';
  const expandedList = params.getAll('expand');
  const expandedKey = expandedList.join(',');
  const expanded = useMemo(() => new Set(expandedKey ? expandedKey.split(',') : []), [expandedKey]);
  const plumbing = params.get('plumbing') === '1';

  const view = useMemo(() => buildViewGraph(wf, { expanded, showPlumbing: plumbing }), [wf, expanded, plumbing]);
  // Every retried task gets one bar per attempt, from the graph's own attempt_spans.
  const gantt = useMemo(() => ganttLayout(wf.nodes, lanes, Date.now()), [wf, lanes]);

  const onSelect = useCallback((taskId: string | null) => set({ task: taskId, fan: null }), [set]);
  const serverFans = useMemo(() => new Set(wf.nodes.filter((n) => n.collapsed).map((n) => n.id)), [wf]);
  const onToggleFan = useCallback(
    (key: string) =>
      serverFans.has(key)
        ? set({ fan: key, task: null }) // cannot expand here: list its members instead
        : set({ expand: expanded.has(key) ? [...expanded].filter((k) => k !== key) : [...expanded, key] }),
    [expanded, set, serverFans],
  );

  const selectedTask = useTask(selected);
  const fan = params.get('fan');
  const onOpenFan = useCallback((key: string) => set({ fan: key, task: null }), [set]);
  // Argument digests tell same-named siblings apart (in nodes and Gantt rows): one page of the list.
  const members = useWorkflowMembers(wf.id);
  const digests = useMemo(
    () => new Map((members.data?.items ?? []).filter((t) => t.args_preview).map((t) => [t.id, argDigest(t.args_preview, 40)])),
    [members.data],
  );
  const shape = workflowTitle(wf);

  const exportJson = () => {
    const blob = new Blob([JSON.stringify(wf, null, 2)], { type: 'application/json' });
    const url = URL.createObjectURL(blob);
    const a = document.createElement('a');
    a.href = url;
    a.download = `workflow-${wf.id}.json`;
    document.body.appendChild(a);
    a.click();
    a.remove();
    window.setTimeout(() => URL.revokeObjectURL(url), 1000);
  };

  return (
    <div className="page workflow-page">
      <header className="wf-head">
        <nav className="breadcrumb" aria-label="Breadcrumb">
          <Link to="/workflows">Workflows</Link><span className="sep">›</span>
          {wf.root_id ? <Link to={`/tasks/${wf.root_id}`}>{wf.name ?? wf.root_id}</Link> : <span>{wf.name}</span>}
        </nav>
        <div className="task-title">
          {wf.scheduled_for ? <ScheduledBadge state={wf.state} eta={wf.scheduled_for} /> : <StateBadge state={wf.state} />}
          <h1 title={wf.name ?? wf.id}>{shape}</h1>
          {wf.source && <Link className="source-tag" to={`/workflows?source=${encodeURIComponent(wf.source)}`} title="The event source its tasks came from (--source)">{wf.source}</Link>}
          {wf.scheduled_for && <ScheduledFor eta={wf.scheduled_for} capital />}
          <span className="muted">{wf.task_count.toLocaleString()} {wf.task_count === 1 ? 'task' : 'tasks'} · <Duration ms={durationBetween(wf.started_at, wf.finished_at)} /> · started <Time ts={wf.started_at} /></span>
        </div>
        <div className="wf-counts">
          <CountsBar counts={wf.counts} />
          {sortedCounts(wf.counts).map(([s, n]) => (
            <Link key={s} className="count" to={tasksLink({ workflow: wf.id, state: s })} title={`The ${n.toLocaleString()} ${s} tasks of this workflow`}>
              <StateBadge state={s} /> {n.toLocaleString()}
            </Link>
          ))}
        </div>
        <div className="wf-actions">
          <label className="check">
            <input type="checkbox" checked={plumbing} onChange={(e) => set({ plumbing: e.target.checked ? '1' : null })} /> Show plumbing (chord_unlock)
          </label>
          <button type="button" className="btn" onClick={exportJson}>Export JSON</button>
        </div>
      </header>
      {wf.events_may_be_missing && (
        <div className="error-banner" role="status">
          Some events of this workflow may be missing (the server recorded a loss from a process that sent them): tasks may be
          absent or show an old state.
        </div>
      )}
      {wf.collapsed_tasks > 0 && (
        <p className="muted small">{wf.collapsed_tasks.toLocaleString()} tasks are drawn inside collapsed nodes: “list” shows their failed and running members.</p>
      )}
      <div className={`wf-main${selected || fan ? ' with-panel' : ''}`}>
        <WorkflowGraph
          wf={wf} view={view} selectedTask={selected} expanded={expanded} onSelectTask={onSelect} onToggleFan={onToggleFan}
          onOpenFan={onOpenFan} digests={digests}
        />
        {fan && !selected && <FanoutPanel wf={wf} view={view} fanKey={fan} onClose={() => set({ fan: null })} onExpand={onToggleFan} onSelect={onSelect} />}
        {selected && (
          <aside className="task-panel" aria-label="Selected task">
            <div className="panel-head">
              <Link to={`/tasks/${selected}`}>Open task page →</Link>
              <button type="button" className="btn small" onClick={() => onSelect(null)} aria-label="Close task panel">✕</button>
            </div>
            <ErrorBanner error={selectedTask.error} what="the task" />
            {selectedTask.data && <TaskView task={selectedTask.data} compact />}
          </aside>
        )}
      </div>
      <section className="wf-timeline">
        <div className="timeline-head">
          <h2>Timeline</h2>
          <div className="seg-toggle" role="group" aria-label="Lanes">
            <button type="button" className={`btn small${lanes === 'task' ? ' on' : ''}`} aria-pressed={lanes === 'task'} onClick={() => set({ lanes: null })}>By task</button>
            <button type="button" className={`btn small${lanes === 'worker' ? ' on' : ''}`} aria-pressed={lanes === 'worker'} onClick={() => set({ lanes: 'worker' })}>By worker</button>
          </div>
          <span className="legend"><span className="g-wait sw" /> queued <span className="g-reserved sw" /> reserved <span className="g-run sw bg-success" /> run</span>
        </div>
        <Gantt layout={gantt} mode={lanes} selected={selected} onSelect={onSelect} digests={digests} />
      </section>
    </div>
  );
}

/** A collapsed fan-out's members, failed first, then running, each with its arguments: "which of the
 * 2,000 failed?" in one click at any size. */
function FanoutPanel(props: {
  wf: WorkflowDetail; view: ViewGraph; fanKey: string; onClose: () => void; onExpand: (key: string) => void; onSelect: (id: string) => void;
}) {
  const { wf, view, fanKey } = props;
  const node = view.nodes.find((n) => n.id === fanKey);
  const name = node?.memberName ?? undefined;
  const failed = useTaskList({ workflow: wf.id, name, state: FAILED_STATES }, null, 50);
  const running = useTaskList({ workflow: wf.id, name, state: RUNNING_STATES }, null, 50);
  // A server-collapsed node carries only a sample of its members: filter by it only when it is whole.
  const members = new Set(node?.serverCollapsed ? [] : node?.members ?? []);
  const pick = (q: typeof failed) => (q.data?.pages[0]?.items ?? []).filter((t) => !members.size || members.has(t.id));
  const rows = [...pick(failed), ...pick(running)];
  const counts = node?.counts ?? {};
  const nFailed = FAILED_STATES.reduce((n, s) => n + (counts[s] ?? 0), 0);
  const nRunning = RUNNING_STATES.reduce((n, s) => n + (counts[s] ?? 0), 0);
  return (
    <aside className="task-panel fan-panel" aria-label="Fan-out members">
      <div className="panel-head">
        <strong>{node ? `${node.label} ×${node.memberCount ?? node.members?.length ?? 0}` : 'Fan-out'}</strong>
        <button type="button" className="btn small" onClick={props.onClose} aria-label="Close fan-out panel">✕</button>
      </div>
      <p className="fan-links">
        <Link to={tasksLink({ workflow: wf.id, name, state: FAILED_STATES })}>{nFailed.toLocaleString()} failed</Link>
        {' · '}
        <Link to={tasksLink({ workflow: wf.id, name, state: RUNNING_STATES })}>{nRunning.toLocaleString()} running</Link>
        {' · '}
        <Link to={tasksLink({ workflow: wf.id, name })}>all members</Link>
        {!node?.serverCollapsed && (
          <>
            {' · '}
            <button type="button" className="link" onClick={() => props.onExpand(fanKey)}>expand in the graph</button>
          </>
        )}
      </p>
      <ErrorBanner error={failed.error ?? running.error} what="the members" />
      {failed.isPending || running.isPending ? <Loading what="members" /> : rows.length === 0 ? (
        <p className="muted">No member failed and none is running.</p>
      ) : (
        <ul className="fan-members">
          {rows.map((t) => (
            <li key={t.id}>
              <StateBadge state={t.state} />{' '}
              <button type="button" className="link mono" title={t.id} onClick={() => props.onSelect(t.id)}>{callText(t.name, t.args_preview, 60)}</button>
              {t.exception_type && <span className="exc-type small" title={t.exception_type}> {exceptionName(t.exception_type)}</span>}
            </li>
          ))}
        </ul>
      )}
    </aside>
  );
}
