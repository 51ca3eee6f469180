// Beat: each celery beat schedule entry with its observed interval, last run and outcome, its runs
// over time as a strip of outcomes (each a link to its task) and the runs it missed, marked where
// they fell. `?entry=NAME` (the beat_missed alert's link) opens that entry's runs, page by page.
// An entry is a name within one event source (two apps' beats both have celery.backend_cleanup):
// with several sources each row is tagged with its own, and opening one scopes the page to it.
import { Fragment } from 'react';
import { Link } from 'react-router';
import type { BeatEntry, BeatRun, MissedRun } from '../api/types';
import { useTitle } from '../app/title';
import { useUrlState } from '../app/urlstate';
import { Duration, Empty, ErrorBanner, Loading, StateBadge, Time } from '../components/common';
import { SourceSelect, sourceParam } from '../components/SourceSelect';
import { stateClass } from '../domain/states';
import { formatDuration, RANGE_PRESETS } from '../domain/time';
import { useBeat, useBeatEntry } from '../queries';

function every(seconds: number | null | undefined): string {
  return seconds ? `every ${formatDuration(seconds * 1000, true)}` : 'not yet known';
}

function runTitle(r: BeatRun): string {
  const exc = r.exception_type ? ` (${r.exception_type})` : '';
  return `${r.state}${exc}, sent ${r.sent_at}`;
}

/** Runs oldest first as squares, a marked gap where runs were missed; `runs` come newest first. */
export function RunStrip({ runs, missed, label }: { runs: BeatRun[]; missed: MissedRun[]; label: string }) {
  const ordered = [...runs].reverse();
  const gapAfter = new Map(missed.filter((m) => m.before).map((m) => [Date.parse(m.after), m]));
  const open = missed.find((m) => !m.before);
  return (
    <ol className="beat-strip" aria-label={label}>
      {ordered.map((r) => {
        const gap = gapAfter.get(Date.parse(r.sent_at));
        return (
          <Fragment key={r.task_id}>
            <li>
              <Link to={`/tasks/${encodeURIComponent(r.task_id)}`} className={`beat-run bg-${stateClass(r.state)}`} title={runTitle(r)} data-state={r.state}>
                <span className="sr-only">{runTitle(r)}</span>
              </Link>
            </li>
            {gap && <MissedMark m={gap} />}
          </Fragment>
        );
      })}
      {open && ordered.length > 0 && <MissedMark m={open} />}
    </ol>
  );
}

function MissedMark({ m }: { m: MissedRun }) {
  const text = `${m.missed} missed run${m.missed === 1 ? '' : 's'} after ${m.after}${m.before ? `, until ${m.before}` : ', none since'}`;
  return (
    <li className="beat-missed" title={text} data-missed={m.missed} data-open={m.before ? undefined : 'true'}>
      <span aria-hidden="true">×{m.missed}</span>
      <span className="sr-only">{text}</span>
    </li>
  );
}

function missedCount(e: BeatEntry): number {
  return e.missed.reduce((n, m) => n + m.missed, 0);
}

export function BeatPage() {
  const [params, set] = useUrlState();
  useTitle('Beat');
  const range = params.get('range') ?? '24h';
  const selected = params.get('entry');
  const source = sourceParam(params);
  const beat = useBeat(range, source);
  const items = beat.data?.items ?? [];

  return (
    <div className="page beat">
      <div className="page-head">
        <h1>Beat</h1>
        <select aria-label="Time range" value={range} onChange={(e) => set({ range: e.target.value })}>
          {Object.keys(RANGE_PRESETS).map((r) => <option key={r} value={r}>Last {r}</option>)}
        </select>
        <SourceSelect params={params} set={set} />
      </div>
      <ErrorBanner error={beat.error} what="beat entries" />
      {beat.isPending ? <Loading what="beat entries" /> : items.length === 0 && !beat.error ? (
        <Empty title="No task sent by celery beat has been seen">
          Call <code>stemtrace.init(app)</code> in the module <code>celery beat</code> loads too: the library then names the
          schedule entry of every task beat sends. Without it, runs show up only on Celery 5.7 (grouped by task name) or with
          django-celery-beat (by entry name).
        </Empty>
      ) : (
        <table className="grid beat-entries">
          <thead>
            <tr><th>Entry</th><th>Task</th><th>Interval</th><th>Last run</th><th className="num">Runs</th><th className="num">Missed</th><th>Runs over time</th></tr>
          </thead>
          <tbody>
            {items.map((e) => {
              const missed = missedCount(e);
              const open = e.entry === selected && (!source || e.source === source);
              const runsLink = new URLSearchParams({ beat: e.entry, ...(e.source ? { source: e.source } : {}) });
              return (
                <tr key={`${e.source}/${e.entry}`} data-entry={e.entry} data-source={e.source || undefined} aria-selected={open} className={open ? 'selected' : undefined}>
                  <td>
                    <button type="button" className="link" onClick={() => set(open ? { entry: null } : { entry: e.entry, source: e.source || null })}>{e.entry}</button>
                    {e.source && <span className="source-tag">{e.source}</span>}
                  </td>
                  <td>{e.task_name ?? '—'}</td>
                  <td className="muted">{every(e.interval_s)}</td>
                  <td>
                    {e.last_run ? (
                      <Link to={`/tasks/${encodeURIComponent(e.last_run.task_id)}`} className="beat-last">
                        <StateBadge state={e.last_run.state} /> <Time ts={e.last_run.sent_at} />
                      </Link>
                    ) : '—'}
                  </td>
                  <td className="num"><Link to={`/tasks?${runsLink.toString()}`}>{e.runs.toLocaleString()}</Link></td>
                  <td className={`num${missed ? ' beat-missed-count' : ''}`}>{missed ? missed.toLocaleString() : '0'}</td>
                  <td><RunStrip runs={e.recent} missed={e.missed} label={`Latest runs of ${e.entry}`} /></td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {selected && <EntryRuns entry={selected} source={source} />}
    </div>
  );
}

function EntryRuns({ entry, source }: { entry: string; source?: string }) {
  const q = useBeatEntry(entry, source);
  const pages = q.data?.pages ?? [];
  const runs = pages.flatMap((p) => p.runs);
  const missed = pages.flatMap((p) => p.missed);
  const first = pages[0];
  return (
    <section aria-labelledby="beat-entry-runs" className="beat-entry">
      <h2 id="beat-entry-runs">Runs of {entry} {first && <span className="muted small">({every(first.interval_s)})</span>}</h2>
      <ErrorBanner error={q.error} what={`the runs of ${entry}`} />
      {q.isPending ? <Loading what="runs" /> : runs.length === 0 ? <Empty title="No runs of this entry are stored" /> : (
        <>
          <RunStrip runs={runs} missed={missed} label={`Runs of ${entry}`} />
          {missed.length > 0 && (
            <ul className="beat-missed-list">
              {missed.map((m) => (
                <li key={m.after}>
                  <strong>{m.missed} missed</strong> after <Time ts={m.after} />{m.before ? <> until <Time ts={m.before} /></> : ', none sent since'}
                </li>
              ))}
            </ul>
          )}
          <table className="grid beat-runs">
            <thead><tr><th>Sent</th><th>State</th><th>Runtime</th><th>Exception</th><th>Task</th></tr></thead>
            <tbody>
              {runs.map((r) => (
                <tr key={r.task_id} data-state={r.state}>
                  <td><Time ts={r.sent_at} /></td>
                  <td><StateBadge state={r.state} /></td>
                  <td><Duration ms={r.runtime_ms} /></td>
                  <td><code>{r.exception_type ?? ''}</code></td>
                  <td><Link to={`/tasks/${encodeURIComponent(r.task_id)}`}>{r.task_id.slice(0, 8)}</Link></td>
                </tr>
              ))}
            </tbody>
          </table>
          {q.hasNextPage && (
            <button type="button" onClick={() => void q.fetchNextPage()} disabled={q.isFetchingNextPage}>
              {q.isFetchingNextPage ? 'Loading…' : 'Older runs'}
            </button>
          )}
        </>
      )}
    </section>
  );
}
