// Workers: online state, heartbeat, running and registered tasks; per task name: throughput,
// failure rate and runtime p50/p95.
import { useState } from 'react';
import { Link } from 'react-router';
import type { Worker } from '../api/types';
import { useStats, useWorkers } from '../queries';
import { useTitle } from '../app/title';
import { useUrlState } from '../app/urlstate';
import { Duration, Empty, ErrorBanner, Loading, NoEventsHint, Time } from '../components/common';
import { Sparkline } from '../components/Sparkline';
import { RANGE_PRESETS } from '../domain/time';
import { tasksLink } from '../domain/links';
import { SourceSelect, sourceParam } from '../components/SourceSelect';

export function WorkersPage() {
  const [params, set] = useUrlState();
  useTitle('Workers');
  const range = params.get('range') ?? '1h';
  const [showExpired, setShowExpired] = useState(false);
  const source = sourceParam(params);
  const workers = useWorkers(undefined, showExpired, source);
  const stats = useStats(range, source);
  const ws = workers.data?.items ?? [];
  const hidden = workers.data?.expired ?? 0;
  const st = stats.data?.items ?? [];
  const maxP95 = Math.max(1, ...st.map((s) => s.runtime_p95_ms ?? 0));

  return (
    <div className="page">
      <div className="page-head"><h1>Workers</h1><SourceSelect params={params} set={set} /></div>
      <ErrorBanner error={workers.error} what="workers" />
      {workers.isPending ? <Loading what="workers" /> : ws.length === 0 && hidden === 0 && !workers.error ? (
        <Empty title="No worker has been seen"><NoEventsHint /></Empty>
      ) : (
        <>
          {SECTIONS.map(({ status, title, hint }) => {
            const group = ws.filter((w) => (w.status ?? (w.online ? 'online' : 'offline')) === status);
            if (group.length === 0) return null;
            return (
              <section key={status} className="worker-section" aria-label={title}>
                <h2 className="section-title">{title} <span className="muted">({group.length.toLocaleString()})</span></h2>
                {hint && <p className="muted small">{hint}</p>}
                <div className="worker-cards">
                  {[...group].sort((a, b) => a.hostname.localeCompare(b.hostname)).map((w) => <WorkerCard key={w.hostname} w={w} />)}
                </div>
              </section>
            );
          })}
          {hidden > 0 && (
            <p className="muted small">
              {hidden.toLocaleString()} worker{hidden === 1 ? '' : 's'} offline for longer than the worker retention{' '}
              <button type="button" className="link" onClick={() => setShowExpired(true)}>show them</button>
            </p>
          )}
        </>
      )}
      <div className="page-head">
        <h2>Per task</h2>
        <select aria-label="Time range" value={range} onChange={(e) => set({ range: e.target.value })}>
          {Object.keys(RANGE_PRESETS).map((r) => <option key={r} value={r}>Last {r}</option>)}
        </select>
      </div>
      <ErrorBanner error={stats.error} what="task statistics" />
      {stats.isPending ? <Loading what="statistics" /> : st.length === 0 && !stats.error ? (
        <Empty title="No task finished in this period" />
      ) : (
        <table className="grid stats">
          <thead>
            <tr><th>Task</th><th className="num">Total</th><th>Throughput</th><th>Failure rate</th><th>Runtime p50 / p95</th></tr>
          </thead>
          <tbody>
            {st.map((s) => (
              <tr key={s.name}>
                <td><Link to={`/tasks?name=${encodeURIComponent(s.name)}`}>{s.name}</Link></td>
                <td className="num"><Link to={tasksLink({ name: s.name, range, source })}>{s.total.toLocaleString()}</Link></td>
                <td><Sparkline series={s.series} /></td>
                <td>
                  <span className="hbar"><span className="bg-failure" style={{ width: `${Math.min(100, s.failure_rate * 100)}%` }} /></span>
                  <span className="num small"> {(s.failure_rate * 100).toFixed(1)}%</span>
                  {s.failed > 0 && (
                    <Link className="small" to={tasksLink({ name: s.name, state: 'FAILURE', range, source })}> · {s.failed.toLocaleString()} failed</Link>
                  )}
                </td>
                <td>
                  <span className="hbar two" title="p50 (dark) and p95 (light)">
                    <span className="p95" style={{ width: `${(100 * (s.runtime_p95_ms ?? 0)) / maxP95}%` }} />
                    <span className="p50" style={{ width: `${(100 * (s.runtime_p50_ms ?? 0)) / maxP95}%` }} />
                  </span>
                  <span className="small"> <Duration ms={s.runtime_p50_ms} /> / <Duration ms={s.runtime_p95_ms} /></span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

// Autoscaled fleets: the workers up now first, then those that went away recently with the tasks
// they had, then (on request) the ones offline for longer than the worker retention.
const SECTIONS = [
  { status: 'online', title: 'Online', hint: null },
  { status: 'offline', title: 'Recently offline', hint: 'Running: the tasks each had when it was last heard from.' },
  { status: 'expired', title: 'Expired', hint: 'Offline for longer than the worker retention (--worker-retention).' },
] as const;

function WorkerCard({ w }: { w: Worker }) {
  return (
    <article className={`card worker ${w.online ? 'online' : 'offline'}`} data-worker={w.hostname}>
      <header>
        <span className={`dot ${w.online ? 'on' : 'off'}`} aria-hidden="true" />
        <h3>{w.hostname}</h3>
        <span className="muted">{w.status ?? (w.online ? 'online' : 'offline')}</span>
      </header>
      <dl className="facts">
        <dt>Heartbeat</dt><dd><Time ts={w.last_heartbeat} /></dd>
        <dt>Pool</dt><dd>{w.pool ?? '—'}{w.concurrency ? ` × ${w.concurrency}` : ''}{w.pid ? ` · pid ${w.pid}` : ''}</dd>
        <dt>Queues</dt><dd>{w.queues.join(', ') || '—'}</dd>
        <dt>Processed</dt><dd>{w.processed?.toLocaleString() ?? '—'}</dd>
        <dt>Running</dt>
        <dd>
          <Link to={tasksLink({ worker: w.hostname, state: w.online ? 'STARTED' : ['STARTED', 'LOST'] })} title={`Tasks running on ${w.hostname}`}>{w.active.toLocaleString()}</Link>{' '}
          {w.active_tasks.slice(0, 5).map((t) => <Link key={t} to={`/tasks/${t}`} className="mono small">{t.slice(0, 8)}</Link>)}
        </dd>
      </dl>
      <details>
        <summary>{w.registered.length} registered tasks</summary>
        <ul className="registered">{w.registered.map((r) => <li key={r}><Link to={`/tasks?name=${encodeURIComponent(r)}`}>{r}</Link></li>)}</ul>
      </details>
    </article>
  );
}
