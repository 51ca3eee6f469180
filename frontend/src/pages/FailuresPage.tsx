// Failures: grouped by task name and exception type, drilling down to the group's failed tasks.
import { Link } from 'react-router';
import { useFailures } from '../queries';
import { useTitle } from '../app/title';
import { useUrlState } from '../app/urlstate';
import { Empty, ErrorBanner, Loading, Time } from '../components/common';
import { exceptionName } from '../domain/values';
import { RANGE_PRESETS } from '../domain/time';

export function FailuresPage() {
  const [params, set] = useUrlState();
  useTitle('Failures');
  const range = params.get('range') ?? '24h';
  const q = useFailures(range);
  const items = q.data?.items ?? [];
  return (
    <div className="page">
      <div className="page-head">
        <h1>Failures</h1>
        <select aria-label="Time range" value={range} onChange={(e) => set({ range: e.target.value })}>
          {Object.keys(RANGE_PRESETS).map((r) => <option key={r} value={r}>Last {r}</option>)}
          <option value="all">All time</option>
        </select>
      </div>
      <ErrorBanner error={q.error} what="failures" />
      {q.isPending ? <Loading what="failures" /> : items.length === 0 && !q.error ? (
        <Empty title="No failures in this period">Nothing failed, was revoked or got lost. Widen the time range to look further back.</Empty>
      ) : (
        <table className="grid failures">
          <thead>
            <tr><th>Task</th><th>Exception</th><th className="num">Count</th><th>Last seen</th><th>Sample message</th><th /></tr>
          </thead>
          <tbody>
            {items.map((f) => {
              // The group's failed tasks: same task name and the exact exception type.
              const drill = new URLSearchParams({ state: 'FAILURE' });
              if (f.name) drill.set('name', f.name);
              if (f.exception_type) drill.set('exception_type', f.exception_type);
              if (range !== 'all') drill.set('range', range);
              const to = `/tasks?${drill.toString()}`;
              return (
                <tr key={`${f.name}|${f.exception_type ?? ''}`}>
                  <td><Link to={to} title={`Failed ${f.name ?? 'unknown'} tasks with ${f.exception_type ?? 'no exception type'}`}>{f.name ?? 'unknown task'}</Link></td>
                  <td>
                    {f.exception_type ? (
                      <Link to={to} tabIndex={-1} title={f.exception_type}><code className="exc-type">{exceptionName(f.exception_type)}</code></Link>
                    ) : <code className="exc-type">—</code>}
                  </td>
                  <td className="num">{f.count.toLocaleString()}</td>
                  <td><Time ts={f.last_seen} /></td>
                  <td className="clip" title={f.sample_message ?? ''}>{f.sample_message ?? ''}</td>
                  <td>{f.last_task_id && <Link to={`/tasks/${f.last_task_id}`}>latest →</Link>}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </div>
  );
}
