// Workflows: roll-up state, counts per state, duration and root task name, with filters in the URL.
import { useMemo } from 'react';
import { Link, useNavigate } from 'react-router';
import { useTaskNames, useWorkflowList } from '../queries';
import { useTitle } from '../app/title';
import { useDebouncedParam, useUrlState } from '../app/urlstate';
import { CountsBar, Duration, Empty, ErrorBanner, Loading, NoEventsHint, StateBadge, Time } from '../components/common';
import { sortedCounts } from '../domain/states';
import { durationBetween } from '../domain/time';
import { tasksLink } from '../domain/links';
import { rangeFilter, TimeRange } from '../components/TimeRange';
import { ScheduledBadge, ScheduledFor } from '../components/Scheduled';
import { workflowTitle } from '../domain/shape';
import { SourceSelect, sourceParam } from '../components/SourceSelect';

const WF_STATES = ['RUNNING', 'SUCCESS', 'FAILURE', 'REVOKED'];

export function WorkflowsPage() {
  const [params, set] = useUrlState();
  useTitle('Workflows');
  const navigate = useNavigate();
  const source = sourceParam(params);
  const filters = { state: params.get('state') ?? undefined, name: params.get('name') ?? undefined, ...rangeFilter(params), source };
  const q = useWorkflowList(filters, params.get('range'));
  const names = useTaskNames(source);
  const commitName = useMemo(() => (v: string) => set({ name: v }), [set]);
  const [name, setName] = useDebouncedParam(params.get('name') ?? '', commitName);
  const rows = q.data?.pages.flatMap((p) => p.items) ?? [];

  return (
    <div className="page">
      <div className="page-head"><h1>Workflows</h1></div>
      <div className="filters" role="group" aria-label="Filters">
        <input data-page-search list="wf-names" placeholder="Root task name  ( / )" aria-label="Root task name" value={name} onChange={(e) => setName(e.target.value)} />
        <datalist id="wf-names">{names.data?.items.map((n) => <option key={n.name} value={n.name} />)}</datalist>
        <TimeRange params={params} set={set} />
        <SourceSelect params={params} set={set} />
        <div className="chips" role="group" aria-label="State">
          {WF_STATES.map((s) => (
            <button key={s} type="button" className={`chip${params.get('state') === s ? ` on st-${s.toLowerCase()}` : ''}`} aria-pressed={params.get('state') === s}
              onClick={() => set({ state: params.get('state') === s ? null : s })}>{s}</button>
          ))}
        </div>
      </div>
      <ErrorBanner error={q.error} what="workflows" />
      {q.isPending ? <Loading what="workflows" /> : rows.length === 0 && !q.error ? (
        [...params.keys()].length ? (
          <Empty title="No workflow matches these filters"><button type="button" className="btn" onClick={() => navigate('/workflows')}>Clear filters</button></Empty>
        ) : (
          <Empty title="No workflows yet"><NoEventsHint /></Empty>
        )
      ) : (
        <table className="grid workflows">
          <thead>
            <tr><th>State</th><th>Workflow</th><th>Tasks</th><th>Counts</th><th>Started</th><th>Duration</th></tr>
          </thead>
          <tbody>
            {rows.map((w) => (
              <tr key={w.id} data-workflow-id={w.id}>
                <td>{w.scheduled_for ? <ScheduledBadge state={w.state} eta={w.scheduled_for} /> : <StateBadge state={w.state} />}</td>
                <td>
                  <Link to={`/workflows/${w.id}`} title={w.name ? `root task: ${w.name}` : w.id}>{workflowTitle(w)}</Link>
                  {w.source && <span className="source-tag">{w.source}</span>}
                  {w.scheduled_for && <div className="small"><ScheduledFor eta={w.scheduled_for} capital /></div>}
                </td>
                <td className="num">{w.task_count.toLocaleString()}</td>
                <td>
                  <div className="counts-cell">
                    <CountsBar counts={w.counts} total={w.task_count} />
                    <span className="small">
                      {sortedCounts(w.counts).map(([s, n], i) => (
                        <span key={s}>
                          {i > 0 && ' · '}
                          <Link to={tasksLink({ workflow: w.id, state: s })}>{`${n.toLocaleString()} ${s.toLowerCase()}`}</Link>
                        </span>
                      ))}
                    </span>
                  </div>
                </td>
                <td><Time ts={w.started_at} /></td>
                <td className="num"><Duration ms={durationBetween(w.started_at, w.finished_at)} /></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {q.hasNextPage && (
        <button type="button" className="btn" disabled={q.isFetchingNextPage} onClick={() => void q.fetchNextPage()}>
          {q.isFetchingNextPage ? 'Loading…' : 'Load more'}
        </button>
      )}
    </div>
  );
}
