// Task: header, breadcrumb up to the workflow root, attempts, args/kwargs/result, event log, children.
import { Fragment, useState } from 'react';
import { Link, useParams } from 'react-router';
import type { Attempt, TaskDetail, TaskEvent } from '../api/types';
import { AttemptLinks } from '../components/AttemptLinks';
import { useAncestors, useTask } from '../queries';
import { useTitle } from '../app/title';
import { callText, shortTaskName } from '../domain/args';
import { CopyButton, Duration, Empty, ErrorBanner, Loading, StateBadge, Time } from '../components/common';
import { JsonTree } from '../components/JsonTree';
import { RerunCopy } from '../components/RerunCopy';
import { isFailed, stateClass } from '../domain/states';
import { formatDuration } from '../domain/time';
import { attemptPhases, phasesText } from '../domain/waiting';
import { exceptionName } from '../domain/values';
import { scheduledFor } from '../domain/schedule';
import { ScheduledFor } from '../components/Scheduled';

export function TaskPage() {
  const { id = '' } = useParams();
  const q = useTask(id);
  useTitle(q.data ? `${q.data.state} ${shortTaskName(q.data.name ?? '?')} ${q.data.id.slice(0, 6)}` : q.error ? 'Task not found' : `Task ${id.slice(0, 6)}`);
  if (q.isPending) return <Loading what="task" />;
  if (q.error) {
    return (
      <div className="page">
        <ErrorBanner error={q.error} what={`task ${id}`} />
        <Empty title="This task is not in the store">
          It may not have been sent yet, its events may have expired, or the id is mistyped. <Link to="/tasks">Back to the task list</Link>.
        </Empty>
      </div>
    );
  }
  return <TaskView task={q.data} />;
}

export function TaskView({ task, compact = false }: { task: TaskDetail; compact?: boolean }) {
  const wfId = task.workflow_id ?? task.root_id;
  // An ETA/countdown task sits RECEIVED until its time: say so rather than let it look stuck.
  const scheduled = scheduledFor(task);
  return (
    <div className={`page task-page${compact ? ' compact' : ''}`}>
      {!compact && <Breadcrumb task={task} />}
      <header className="task-head">
        <div className="task-title">
          <StateBadge state={task.state} />
          {scheduled && <span className="badge st-scheduled" title={`ETA ${scheduled}`}>SCHEDULED</span>}
          <h1>{task.name ?? <em>unknown task</em>}</h1>
        </div>
        <dl className="facts">
          <dt>ID</dt>
          <dd className="mono">{task.id} <CopyButton text={task.id} label="Copy id" /></dd>
          {task.names.length > 1 && (<><dt>Also named</dt><dd>{task.names.filter((n) => n !== task.name).join(', ')}</dd></>)}
          <dt>Worker</dt><dd>{task.worker ?? '—'}</dd>
          <dt>Queue</dt><dd>{task.queue ?? '—'}</dd>
          {task.args_preview && (<><dt>Call</dt><dd className="mono call" title={task.args_preview}>{callText(task.name, task.args_preview)}</dd></>)}
          <dt>Re-run</dt><dd><RerunCopy task={task} /></dd>
          {scheduled && (<><dt>Scheduled</dt><dd><ScheduledFor eta={scheduled} /></dd></>)}
          <dt>Received</dt><dd><Time ts={task.received_at ?? task.sent_at} /></dd>
          <dt>Runtime</dt><dd><Duration ms={task.runtime_ms} /></dd>
          {task.retries > 0 && (<><dt>Retries</dt><dd>{task.retries}</dd></>)}
          {wfId && (<><dt>Workflow</dt><dd><Link to={`/workflows/${wfId}?task=${task.id}`}>Open the workflow graph →</Link></dd></>)}
        </dl>
      </header>
      <section>
        <h2>Attempts</h2>
        <Attempts attempts={task.attempts} sentAt={task.sent_at} />
      </section>
      <section className="values">
        <div>
          <h2>Args</h2>
          <JsonTree value={task.args} label="args" />
        </div>
        <div>
          <h2>Kwargs</h2>
          <JsonTree value={task.kwargs} label="kwargs" />
        </div>
        <div>
          <h2>Result</h2>
          {task.result === null || task.result === undefined ? <span className="muted">None</span> : <JsonTree value={task.result} label="result" />}
        </div>
      </section>
      {!compact && (
        <>
          <section>
            <h2>Children <span className="muted">({task.child_count.toLocaleString()})</span></h2>
            <Children task={task} />
          </section>
          <section>
            <h2>Event log</h2>
            <EventLog events={task.events} />
          </section>
        </>
      )}
    </div>
  );
}

function Breadcrumb({ task }: { task: TaskDetail }) {
  const anc = useAncestors(task.id, task.parent_id);
  const crumbs = anc.data ?? [];
  return (
    <nav className="breadcrumb" aria-label="Breadcrumb">
      <Link to="/tasks">Tasks</Link>
      {crumbs.map((c) => (
        <span key={c.id}>
          <span className="sep">›</span>
          <Link to={`/tasks/${c.id}`} title={c.id}>{c.name ?? c.id.slice(0, 8)}</Link>
        </span>
      ))}
      <span><span className="sep">›</span><span aria-current="page">{task.name ?? task.id.slice(0, 8)}</span></span>
    </nav>
  );
}

function Attempts({ attempts, sentAt }: { attempts: Attempt[]; sentAt: string | null }) {
  if (!attempts.length) return <p className="muted">Not received by a worker yet.</p>;
  const phases = attemptPhases(sentAt, attempts);
  const scale = Math.max(1, ...phases.map((p) => (p.queued ?? 0) + (p.reserved ?? 0) + (p.run ?? 0)));
  const lastFailed = [...attempts].reverse().find((a) => isFailed(a.state) || a.state === 'RETRY');
  return (
    <ol className="attempts">
      {attempts.map((a, i) => {
        const p = phases[i] ?? { queued: null, reserved: null, run: null };
        const pct = (ms: number | null) => `${(100 * (ms ?? 0)) / scale}%`;
        return (
          <li key={a.number} className="attempt">
            <div className="attempt-head">
              <span className="attempt-no">#{a.number}</span>
              <StateBadge state={a.state} />
              <span>{a.worker ?? '—'}</span>
              <span className="muted"><Time ts={a.started_at ?? a.received_at} /></span>
              <span className="bar" aria-hidden="true">
                <span className="queued" style={{ width: pct(p.queued) }} />
                <span className="reserved" style={{ width: pct(p.reserved) }} />
                <span className={`run bg-${stateClass(a.state)}`} style={{ width: pct(p.run) }} />
              </span>
              <span className="phases" data-phases>{phasesText(p, (ms) => formatDuration(ms)) || 'not started'}</span>
              <AttemptLinks attempt={a} />
            </div>
            {a.lost_reason && <p className="lost">Lost: {a.lost_reason}</p>}
            {a.outcome_from === 'main' && (
              <p className="muted" data-outcome-from="main">
                Outcome from the worker's main process: its pool child was killed before sending its own events (no result value or handler time).
              </p>
            )}
            {(a.exception_type || a.exception) && (
              <p className="exc">
                <strong title={a.exception_type ?? undefined}>{exceptionName(a.exception_type)}</strong>{a.exception ? `: ${a.exception}` : ''}
                {a.exception_truncated && <TruncatedMark size={a.exception_original_size} />}
              </p>
            )}
            {a.traceback && (
              <details open={a === lastFailed}>
                <summary>Traceback{a.traceback_truncated && <TruncatedMark size={a.traceback_original_size} />}</summary>
                <pre className="traceback">{a.traceback}</pre>
              </details>
            )}
          </li>
        );
      })}
    </ol>
  );
}

function Children({ task }: { task: TaskDetail }) {
  if (!task.child_count) return <p className="muted">No children.</p>;
  const more = task.child_count - task.child_tasks.length;
  const wfId = task.workflow_id ?? task.root_id;
  return (
    <ul className="children">
      {task.child_tasks.map((c) => (
        <li key={c.id}>
          <StateBadge state={c.state} />{' '}
          <Link to={`/tasks/${c.id}`} title={c.id}>{c.name ?? <em>unknown task</em>}</Link>{' '}
          <span className="mono muted small">{c.id.slice(0, 8)}</span>
        </li>
      ))}
      {more > 0 && (
        <li className="muted">
          …and {more.toLocaleString()} more
          {wfId ? <> (<Link to={`/workflows/${wfId}?task=${task.id}`}>see the workflow</Link>)</> : null}
        </li>
      )}
    </ul>
  );
}

const BULKY = new Set(['args', 'kwargs', 'result', 'traceback', 'canvas', 'args_repr', 'kwargs_repr', 'exception']);

/** Events arrive as the library's raw envelopes: {type, ts (epoch s), src, task, data}. */
function EventLog({ events }: { events: TaskEvent[] }) {
  const [open, setOpen] = useState<number | null>(null);
  if (!events.length) return <p className="muted">No events recorded.</p>;
  return (
    <table className="events">
      <thead>
        <tr><th>Time</th><th>Event</th><th>Source</th><th>Details</th><th /></tr>
      </thead>
      <tbody>
        {events.map((e, i) => {
          const ts = typeof e.ts === 'number' ? new Date(e.ts * 1000).toISOString() : typeof e.ts === 'string' ? e.ts : null;
          const src = (e.src ?? {}) as { host?: string; pid?: number; proc?: string; node?: string | null };
          const data = (e.data ?? {}) as Record<string, unknown>;
          const summary = Object.entries(data)
            .filter(([k, v]) => !BULKY.has(k) && v !== null && v !== undefined && v !== '' && typeof v !== 'object')
            .map(([k, v]) => `${k}=${String(v)}`)
            .join('  ');
          return (
            <Fragment key={i}>
              <tr>
                <td className="nowrap"><Time ts={ts} /></td>
                <td><code>{String(e.type)}</code></td>
                <td className="small">{src.proc ?? '?'} · {src.node ?? `${src.host ?? '?'}:${src.pid ?? '?'}`}</td>
                <td className="mono small">{summary}</td>
                <td>
                  <button type="button" className="btn small" aria-expanded={open === i} onClick={() => setOpen(open === i ? null : i)}>
                    {open === i ? 'Hide' : 'Data'}
                  </button>
                </td>
              </tr>
              {open === i && (
                <tr>
                  <td colSpan={5}><JsonTree value={e} label={`event ${i + 1}`} /></td>
                </tr>
              )}
            </Fragment>
          );
        })}
      </tbody>
    </table>
  );
}

/** The library cut a long message or traceback: say so, with the size it had. */
function TruncatedMark({ size }: { size?: number | null }) {
  return (
    <span className="marker truncated" title="Cut by the capture library's size limit">
      truncated{size ? ` (was ${size.toLocaleString()} B)` : ''}
    </span>
  );
}
