// Failures: grouped by task name and exception type, drilling down to the group's failed tasks.
import { Link } from 'react-router';
import { useFailures, useLostTasks } from '../queries';
import { failureRows, lostRows } from '../domain/failures';
import { tasksLink } from '../domain/links';
import { StateBadge } from '../components/common';
import { useTitle } from '../app/title';
import { useUrlState } from '../app/urlstate';
import { Empty, ErrorBanner, Loading, Time } from '../components/common';
import { exceptionName } from '../domain/values';
import { RANGE_PRESETS } from '../domain/time';
import { SourceSelect, sourceParam } from '../components/SourceSelect';

export function FailuresPage() {
  const [params, set] = useUrlState();
  useTitle('Failures');
  const range = params.get('range') ?? '24h';
  const source = sourceParam(params);
  const q = useFailures(range, source);
  const lost = useLostTasks(range === 'all' ? '' : range, source);
  const items = [...failureRows(q.data?.items ?? []), ...lostRows(lost.data?.items ?? [])].sort((a, b) => b.count - a.count);
  return (
    <div className="page">
      <div className="page-head">
        <h1>Failures</h1>
        <select aria-label="Time range" value={range} onChange={(e) => set({ range: e.target.value })}>
          {Object.keys(RANGE_PRESETS).map((r) => <option key={r} value={r}>Last {r}</option>)}
          <option value="all">All time</option>
        </select>
        <SourceSelect params={params} set={set} />
      </div>
      <ErrorBanner error={q.error} what="failures" />
      <ErrorBanner error={lost.error} what="lost tasks" />
      {q.isPending ? <Loading what="failures" /> : items.length === 0 && !q.error ? (
        <Empty title="No failures in this period">Nothing failed, was revoked or got lost. Widen the time range to look further back.</Empty>
      ) : (
        <table className="grid failures">
          <thead>
            <tr><th>Task</th><th>Exception</th><th className="num">Count</th><th>Last seen</th><th>Sample message</th><th /></tr>
          </thead>
          <tbody>
            {items.map((f) => {
              // The group's tasks: same task name and state, and the exact exception type.
              const to = tasksLink({ name: f.name, state: f.state, exception_type: f.exceptionType, range, source });
              const what = f.state === 'LOST' ? 'Lost' : 'Failed';
              return (
                <tr key={f.key} data-state={f.state}>
                  <td><Link to={to} title={`${what} ${f.name ?? 'unknown'} tasks${f.state === 'LOST' ? '' : ` with ${f.exceptionType ?? 'no exception type'}`}`}>{f.name ?? 'unknown task'}</Link></td>
                  <td>
                    {f.state === 'LOST' ? <StateBadge state="LOST" /> : f.exceptionType ? (
                      <Link to={to} tabIndex={-1} title={f.exceptionType}><code className="exc-type">{exceptionName(f.exceptionType)}</code></Link>
                    ) : <code className="exc-type">—</code>}
                  </td>
                  <td className="num"><Link to={to}>{f.count.toLocaleString()}</Link></td>
                  <td><Time ts={f.lastSeen} /></td>
                  <td className="clip" title={f.message ?? ''}>{f.message ?? ''}</td>
                  <td>{f.latest && <Link to={`/tasks/${f.latest}`}>latest →</Link>}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </div>
  );
}
