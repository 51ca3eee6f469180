// "Needs attention", the home page: what an on-call engineer must look at, each row linked to its tasks —
// failures (LOST included) grouped by task and exception with their counts over time, stuck tasks, retry
// storms, workers gone offline with tasks on them, celery beat runs missed, and events the server lost or set aside.
import { Link } from 'react-router';
import type { TaskStats, Worker } from '../api/types';
import { failureRows, lostRows } from '../domain/failures';
import { useTitle } from '../app/title';
import { Empty, ErrorBanner, Loading, StateBadge, Time } from '../components/common';
import { tasksLink } from '../domain/links';
import { exceptionName } from '../domain/values';
import { formatDuration } from '../domain/time';
import { retryStorms, STORM_MIN_RETRIES } from '../domain/retries';
import { useBeat, useFailures, useHealth, useLostTasks, useQuarantine, useStats, useStuck, useWorkers } from '../queries';
import { apiRoot } from '../api/client';
import { useUrlState } from '../app/urlstate';
import { SourceSelect, sourceParam } from '../components/SourceSelect';

const RANGE = '24h';

/** "7 days", "12 hours", else the duration's own form. */
function keptFor(seconds: number): string {
  if (seconds > 0 && seconds % 86400 === 0) return `${seconds / 86400} day${seconds === 86400 ? '' : 's'}`;
  if (seconds > 0 && seconds % 3600 === 0) return `${seconds / 3600} hour${seconds === 3600 ? '' : 's'}`;
  return formatDuration(seconds * 1000, true);
}

/** Fields newer servers add to /api/health; read when present. */
interface HealthExtras {
  reasons?: string[];
  losses?: { total: number; recent: number; by_cause?: Record<string, number> } | null;
  retention?: { retention_s: number; failure_retention_s: number; max_tasks: number | null; behind: boolean } | null;
}

/** Failed per bucket as tiny bars (no chart library on the home page). */
function FailedBars({ stats }: { stats: TaskStats | undefined }) {
  const series = stats?.series ?? [];
  if (!series.length) return null;
  const max = Math.max(1, ...series.map((p) => p.failed));
  const w = 4;
  return (
    <svg className="failed-bars" width={series.length * w} height={18} role="img" aria-label={`Failures over the last ${RANGE}: ${series.map((p) => p.failed).join(', ')}`}>
      {series.map((p, i) => {
        const h = p.failed ? Math.max(2, (16 * p.failed) / max) : 1;
        return <rect key={p.t} x={i * w} y={18 - h} width={w - 1} height={h} className={p.failed ? 'fb-failed' : 'fb-zero'} />;
      })}
    </svg>
  );
}

export function AttentionPage() {
  useTitle('Needs attention');
  // Several event sources (--source): the page can be scoped to one; server health stays server-wide.
  const [params, set] = useUrlState();
  const source = sourceParam(params);
  const failures = useFailures(RANGE, source);
  const week = useFailures('7d', source);
  const lost = useLostTasks(RANGE, source);
  const stats = useStats(RANGE, source);
  const stuck = useStuck(source);
  const workers = useWorkers(undefined, false, source);
  const health = useHealth();
  const quarantine = useQuarantine();
  const setAside = quarantine.data?.items ?? [];
  const beat = useBeat(RANGE, source);
  const missedBeat = (beat.data?.items ?? []).filter((e) => e.missed.length > 0);

  const rows = [...failureRows(failures.data?.items ?? []), ...lostRows(lost.data?.items ?? [])].sort(
    (a, b) => (b.lastSeen ?? '').localeCompare(a.lastSeen ?? ''),
  );
  const statsOf = new Map((stats.data?.items ?? []).map((s) => [s.name, s]));
  const stuckItems = stuck.data?.items ?? [];
  const storms = retryStorms(stats.data?.items ?? []);
  const gone: Worker[] = (workers.data?.items ?? []).filter((w) => !w.online && w.active > 0);
  const h = health.data as (typeof health.data & HealthExtras) | undefined;
  const problems: string[] = [];
  if (h) {
    if (h.reasons?.length) problems.push(...h.reasons);
    else if (h.status === 'degraded') problems.push('The server reports itself degraded.');
    if (h.ingest.error) problems.push(`Ingest: ${h.ingest.error}`);
    if (h.store.error) problems.push(`Store: ${h.store.error}`);
    if (h.library.dropped > 0) problems.push(`${h.library.dropped.toLocaleString()} events were dropped by the capture library (its buffer was full).`);
    const malformed = Object.values(h.ingest.malformed ?? {}).reduce((a, b) => a + b, 0);
    if (malformed > 0) problems.push(`${malformed.toLocaleString()} events were set aside (quarantined) as malformed.`);
    if (h.losses && h.losses.recent > 0) problems.push(`${h.losses.recent.toLocaleString()} events were lost recently (${h.losses.total.toLocaleString()} in all).`);
    if (h.retention?.behind) problems.push('Retention is behind: expired workflows are waiting to be deleted.');
  }
  const unique = [...new Set(problems)];
  const loading = failures.isPending || lost.isPending || stuck.isPending || workers.isPending;
  const allWell = !loading && !rows.length && !stuckItems.length && !storms.length && !gone.length && !unique.length && !setAside.length && !missedBeat.length;
  const lastFailure = (week.data?.items ?? []).reduce<string | null>((m, f) => (f.last_seen && (!m || f.last_seen > m) ? f.last_seen : m), null);

  return (
    <div className="page attention">
      <div className="page-head"><h1>Needs attention</h1><span className="muted">last {RANGE}</span><SourceSelect params={params} set={set} /></div>
      <ErrorBanner error={failures.error} what="failures" />
      <ErrorBanner error={stuck.error} what="stuck tasks" />
      <ErrorBanner error={workers.error} what="workers" />
      {unique.length > 0 && (
        <section className="health-problems" aria-label="Server health">
          <h2>Events and server</h2>
          <ul>{unique.map((p) => <li key={p}>{p}</li>)}</ul>
        </section>
      )}
      {setAside.length > 0 && (
        <section aria-labelledby="att-quarantine">
          <h2 id="att-quarantine">Events set aside (quarantined)</h2>
          <table className="grid attention-quarantine">
            <thead><tr><th>Reason</th><th>Event</th><th className="num">Count</th><th>Last seen</th><th>Why</th></tr></thead>
            <tbody>
              {setAside.map((q) => (
                <tr key={`${q.reason}|${q.kind}`}>
                  <td><code>{q.reason}</code></td>
                  <td><code>{q.kind}</code></td>
                  <td className="num"><a href={`${apiRoot()}/api/quarantine`} title="The entries with their samples (JSON)">{q.count.toLocaleString()}</a></td>
                  <td><Time ts={q.last_seen} /></td>
                  <td className="clip" title={q.detail}>{q.detail}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      )}
      {loading ? <Loading what="what needs attention" /> : allWell ? (
        <Empty title="All is well">
          Nothing failed, got lost, is stuck or keeps retrying in the last {RANGE}, and every worker that went offline left no task behind.{' '}
          {lastFailure ? <>Last failure: <Time ts={lastFailure} />.</> : 'No failure in the last 7 days.'}
        </Empty>
      ) : (
        <>
          {rows.length > 0 && (
            <section aria-labelledby="att-failures">
              <h2 id="att-failures">Failures</h2>
              <table className="grid attention-failures">
                <thead>
                  <tr><th>Task</th><th>Exception</th><th className="num">Count</th><th>Over time</th><th>Last seen</th><th>Sample message</th></tr>
                </thead>
                <tbody>
                  {rows.map((r) => {
                    const to = tasksLink({ name: r.name, state: r.state, exception_type: r.exceptionType, range: RANGE, source });
                    return (
                      <tr key={r.key} data-state={r.state}>
                        <td><Link to={to}>{r.name ?? 'unknown task'}</Link></td>
                        <td>
                          {r.state === 'LOST' ? <StateBadge state="LOST" /> : (
                            <code className="exc-type" title={r.exceptionType ?? ''}>{exceptionName(r.exceptionType) || '—'}</code>
                          )}
                        </td>
                        <td className="num"><Link to={to} aria-label={`${r.count} ${r.state === 'LOST' ? 'lost' : 'failed'} ${r.name ?? ''} tasks`}>{r.count.toLocaleString()}</Link></td>
                        <td>{r.name && <FailedBars stats={statsOf.get(r.name)} />}</td>
                        <td><Time ts={r.lastSeen} /></td>
                        <td className="clip" title={r.message ?? ''}>{r.message ?? ''}</td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </section>
          )}
          {stuckItems.length > 0 && (
            <section aria-labelledby="att-stuck">
              <h2 id="att-stuck">Stuck</h2>
              <table className="grid attention-stuck">
                <thead><tr><th>State</th><th>Task</th><th>Why</th><th>Since</th></tr></thead>
                <tbody>
                  {stuckItems.map((s) => (
                    <tr key={s.task_id} data-reason={s.reason}>
                      <td><StateBadge state={s.state} /></td>
                      <td><Link to={`/tasks/${s.task_id}`} title={s.task_id}>{s.name ?? s.task_id.slice(0, 8)}</Link></td>
                      <td>{s.detail}</td>
                      <td><Time ts={s.since} /></td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </section>
          )}
          {missedBeat.length > 0 && (
            <section aria-labelledby="att-beat">
              <h2 id="att-beat">Missed beat runs</h2>
              <ul className="attention-beat">
                {missedBeat.map((e) => {
                  const last = e.missed[e.missed.length - 1];
                  const count = e.missed.reduce((n, m) => n + m.missed, 0);
                  return (
                    <li key={`${e.source}/${e.entry}`} data-entry={e.entry}>
                      <Link to={`/beat?${new URLSearchParams({ entry: e.entry, ...(e.source ? { source: e.source } : {}) }).toString()}`}>
                        <strong>{e.entry}</strong>
                      </Link>
                      {e.source && <span className="source-tag">{e.source}</span>} missed{' '}
                      {count.toLocaleString()} run{count === 1 ? '' : 's'}
                      {last && <>, last after <Time ts={last.after} />{last.before ? '' : ' and none sent since'}</>}
                    </li>
                  );
                })}
              </ul>
            </section>
          )}
          {storms.length > 0 && (
            <section aria-labelledby="att-retries">
              <h2 id="att-retries">Retry storms</h2>
              <table className="grid attention-retries">
                <thead><tr><th>Task</th><th className="num">Retries</th><th className="num">Tasks retried</th><th className="num">Failed</th></tr></thead>
                <tbody>
                  {storms.map((s) => (
                    <tr key={s.name} data-task-name={s.name}>
                      <td><Link to={tasksLink({ name: s.name, range: RANGE, source })} title={`The ${s.name} tasks of the last ${RANGE} (see their Retries column)`}>{s.name}</Link></td>
                      <td className="num">{(s.retries ?? 0).toLocaleString()}</td>
                      <td className="num">{`${(s.retried ?? 0).toLocaleString()} of ${s.total.toLocaleString()}`}</td>
                      <td className="num">
                        {s.failed > 0 ? <Link to={tasksLink({ name: s.name, state: ['FAILURE', 'LOST', 'REJECTED'], range: RANGE, source })}>{s.failed.toLocaleString()}</Link> : '0'}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <p className="muted small">Task names with at least {STORM_MIN_RETRIES} retries in the last {RANGE}, a tenth of their tasks or more retried.</p>
            </section>
          )}
          {gone.length > 0 && (
            <section aria-labelledby="att-workers">
              <h2 id="att-workers">Workers gone offline with tasks on them</h2>
              <ul className="attention-workers">
                {gone.map((w) => (
                  <li key={w.hostname}>
                    <strong>{w.hostname}</strong> went offline <Time ts={w.offline_at ?? w.last_heartbeat} /> with{' '}
                    <Link to={tasksLink({ worker: w.hostname, state: ['STARTED', 'LOST'] })}>{w.active.toLocaleString()} task{w.active === 1 ? '' : 's'}</Link> on it
                  </li>
                ))}
              </ul>
            </section>
          )}
        </>
      )}
      {h?.retention && (
        <p className="muted small retention" data-retention>
          Retention in force: workflows are kept {keptFor(h.retention.retention_s)}, failed ones {keptFor(h.retention.failure_retention_s)}
          {h.retention.max_tasks ? `, at most ${h.retention.max_tasks.toLocaleString()} tasks` : ''}.
        </p>
      )}
    </div>
  );
}
