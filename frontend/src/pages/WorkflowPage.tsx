// Workflow: graph and Gantt of one workflow, selection shared between them and a task panel.
import { useCallback, useEffect, useMemo } from 'react';
import { Link, useParams } from 'react-router';
import type { WorkflowDetail } from '../api/types';
import { useTask, useWorkflow } from '../queries';
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

export function WorkflowPage() {
  const { id = '' } = useParams();
  const [params, set] = useUrlState();
  const plumbing = params.get('plumbing') === '1';
  useEffect(() => warmLayoutEngine(), []);
  const q = useWorkflow(id, plumbing);
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

  const onSelect = useCallback((taskId: string | null) => set({ task: taskId }), [set]);
  const onToggleFan = useCallback(
    (key: string) => set({ expand: expanded.has(key) ? [...expanded].filter((k) => k !== key) : [...expanded, key] }),
    [expanded, set],
  );

  const selectedTask = useTask(selected);

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
          <StateBadge state={wf.state} />
          <h1>{wf.name ?? wf.id}</h1>
          <span className="muted">{wf.task_count.toLocaleString()} tasks · <Duration ms={durationBetween(wf.started_at, wf.finished_at)} /> · started <Time ts={wf.started_at} /></span>
        </div>
        <div className="wf-counts">
          <CountsBar counts={wf.counts} />
          {sortedCounts(wf.counts).map(([s, n]) => (
            <span key={s} className="count"><StateBadge state={s} /> {n.toLocaleString()}</span>
          ))}
        </div>
        <div className="wf-actions">
          <label className="check">
            <input type="checkbox" checked={plumbing} onChange={(e) => set({ plumbing: e.target.checked ? '1' : null })} /> Show plumbing (chord_unlock)
          </label>
          <button type="button" className="btn" onClick={exportJson}>Export JSON</button>
        </div>
      </header>
      <div className={`wf-main${selected ? ' with-panel' : ''}`}>
        <WorkflowGraph wf={wf} view={view} selectedTask={selected} expanded={expanded} onSelectTask={onSelect} onToggleFan={onToggleFan} />
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
          <span className="legend"><span className="g-wait sw" /> queue wait <span className="g-run sw bg-success" /> run</span>
        </div>
        <Gantt layout={gantt} mode={lanes} selected={selected} onSelect={onSelect} />
      </section>
    </div>
  );
}
