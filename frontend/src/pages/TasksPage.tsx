// Tasks: a dense, virtualized, server-paged table with filters and search in the URL.
import { useVirtualizer } from '@tanstack/react-virtual';
import { useEffect, useImperativeHandle, useMemo, useRef, useState, type Ref } from 'react';
import { Link, useNavigate } from 'react-router';
import type { TaskFilters } from '../api/client';
import type { TaskSummary } from '../api/types';
import { useTitle } from '../app/title';
import { useDebouncedParam, useUrlState } from '../app/urlstate';
import { Duration, Empty, ErrorBanner, NoEventsHint, StateBadge, Time } from '../components/common';
import { ScheduledBadge, ScheduledFor } from '../components/Scheduled';
import { scheduledFor } from '../domain/schedule';
import { TASK_STATES } from '../domain/states';
import { rangeFilter, TimeRange } from '../components/TimeRange';
import { useExceptionTypes, useTaskList, useTaskNames, useWorkers } from '../queries';
import { SourceSelect } from '../components/SourceSelect';
import { exceptionName, findTaskId } from '../domain/values';
import { callText } from '../domain/args';

/** 10,000 rows: past that, narrowing the filters beats scrolling. */
const MAX_PAGES = 50;
export const ROW_HEIGHT = 25;

export function TasksPage() {
  const [params, set] = useUrlState();
  const navigate = useNavigate();
  useTitle('Tasks');
  const states = params.getAll('state');
  const range = params.get('range');
  const filters: TaskFilters = {
    name: params.get('name') ?? undefined,
    state: states,
    exception_type: params.getAll('exception_type'),
    worker: params.get('worker') ?? undefined,
    queue: params.get('queue') ?? undefined,
    q: params.get('q') ?? undefined,
    ...rangeFilter(params),
    workflow: params.get('workflow') ?? undefined,
    group: params.get('group') ?? undefined,
    parent: params.get('parent') ?? undefined,
    beat: params.get('beat') ?? undefined,
    source: params.get('source') ?? undefined,
  };
  const query = useTaskList(filters, range);
  const names = useTaskNames(filters.source);
  const workers = useWorkers(30_000, false, filters.source);

  const rows = useMemo(() => query.data?.pages.flatMap((p) => p.items) ?? [], [query.data]);
  const hasFilters = [...params.keys()].length > 0;
  // While the pointer is over the list or it is scrolled, new rows wait behind a pill instead of
  // pushing the row under the pointer down (the snapshot is the ids the user is looking at).
  const [held, setHeld] = useState<{ hover: boolean; scrolled: boolean }>({ hover: false, scrolled: false });
  const [snapshot, setSnapshot] = useState<ReadonlySet<string> | null>(null);
  const holding = held.hover || held.scrolled;
  const filterKey = params.toString();
  useEffect(() => setSnapshot(null), [filterKey]);
  useEffect(() => {
    if (holding) {
      setSnapshot((s) => s ?? new Set(rows.map((r) => r.id)));
      return;
    }
    // Released a moment after the pointer leaves, so it can reach the pill without the list jumping.
    const t = window.setTimeout(() => setSnapshot(null), 1200);
    return () => window.clearTimeout(t);
  }, [holding, rows]);
  const firstHeld = snapshot ? rows.findIndex((r) => snapshot.has(r.id)) : -1;
  const fresh = firstHeld > 0 ? firstHeld : 0;
  const shown = fresh ? rows.slice(fresh) : rows;
  const tableRef = useRef<{ toTop: () => void }>(null);

  return (
    <div className="page tasks-page">
      <div className="page-head">
        <h1>Tasks</h1>
        <span className="muted" data-match-count>{matchText(rows.length, !!query.hasNextPage)}</span>
        {fresh > 0 && (
          <button
            type="button"
            className="btn small new-pill"
            onMouseEnter={() => setHeld((h) => ({ ...h, hover: true }))}
            onMouseLeave={() => setHeld((h) => ({ ...h, hover: false }))}
            onClick={() => {
              setSnapshot(new Set(rows.map((r) => r.id)));
              tableRef.current?.toTop();
            }}
          >
            {fresh.toLocaleString()} new — show
          </button>
        )}
      </div>
      <Filters
        params={params}
        set={set}
        names={names.data?.items.map((n) => n.name) ?? []}
        workers={workers.data?.items.map((w) => w.hostname) ?? []}
        queues={[...new Set(workers.data?.items.flatMap((w) => w.queues) ?? [])]}
        onJump={(id) => navigate(`/tasks/${id}`)}
      />
      <ErrorBanner error={query.error} what="tasks" />
      <ErrorBanner error={names.error} what="task names" />
      {query.isPending ? (
        <div className="loading">Loading tasks…</div>
      ) : rows.length === 0 && !query.error ? (
        hasFilters ? (
          <Empty title="No task matches these filters">
            <button type="button" className="btn" onClick={() => navigate('/tasks')}>Clear filters</button>
          </Empty>
        ) : (
          <Empty title="No events yet">
            <NoEventsHint />
          </Empty>
        )
      ) : (
        <TaskTable
          ref={tableRef}
          rows={shown}
          onHold={(h) => setHeld((prev) => (prev.hover === (h.hover ?? prev.hover) && prev.scrolled === (h.scrolled ?? prev.scrolled) ? prev : { ...prev, ...h }))}
          onEnd={() => {
            if (query.hasNextPage && !query.isFetchingNextPage && (query.data?.pages.length ?? 0) < MAX_PAGES) void query.fetchNextPage();
          }}
          loadingMore={query.isFetchingNextPage}
          capped={!!query.hasNextPage && (query.data?.pages.length ?? 0) >= MAX_PAGES}
        />
      )}
    </div>
  );
}

function Filters(props: {
  params: URLSearchParams;
  set: (u: Record<string, string | string[] | null>) => void;
  names: string[];
  workers: string[];
  queues: string[];
  onJump: (id: string) => void;
}) {
  const { params, set } = props;
  const states = params.getAll('state');
  const commitQ = useMemo(() => (v: string) => set({ q: v }), [set]);
  const commitName = useMemo(() => (v: string) => set({ name: v }), [set]);
  const commitWorker = useMemo(() => (v: string) => set({ worker: v }), [set]);
  const commitQueue = useMemo(() => (v: string) => set({ queue: v }), [set]);
  // The box edits the first exception type; more (from a link or the API) stay as removable chips.
  const excTypes = params.getAll('exception_type');
  const excKey = excTypes.join('\n');
  const commitExc = useMemo(
    () => (v: string) => set({ exception_type: [v.trim(), ...(excKey ? excKey.split('\n') : []).slice(1)].filter(Boolean) }),
    [set, excKey],
  );
  const [q, setQ] = useDebouncedParam(params.get('q') ?? '', commitQ);
  const [name, setName] = useDebouncedParam(params.get('name') ?? '', commitName);
  const [worker, setWorker] = useDebouncedParam(params.get('worker') ?? '', commitWorker);
  const [queue, setQueue] = useDebouncedParam(params.get('queue') ?? '', commitQueue);
  const [excType, setExcType] = useDebouncedParam(excTypes[0] ?? '', commitExc);
  // Exact types are long (`builtins.ValueError`): suggest the ones that failed lately, once asked.
  const [suggestExc, setSuggestExc] = useState(false);
  const failures = useExceptionTypes(suggestExc);
  const knownExc = [...new Set((failures.data?.items ?? []).flatMap((f) => (f.exception_type ? [f.exception_type] : [])))].sort();

  return (
    <div className="filters" role="group" aria-label="Filters">
      <input
        type="search"
        data-page-search
        className="search"
        placeholder='Search: id prefix, words, "a phrase", key=value, -word  ( / )'
        title="Searches every stored task: an id prefix, words in arguments, results and errors, a quoted phrase, key=value on kwargs, -word to exclude"
        aria-label="Search tasks"
        value={q}
        onChange={(e) => setQ(e.target.value)}
        onKeyDown={(e) => {
          const id = e.key === 'Enter' ? findTaskId(q) : null;
          if (id) props.onJump(id);
        }}
      />
      <input list="task-names" placeholder="Task name" aria-label="Task name" value={name} onChange={(e) => setName(e.target.value)} />
      <datalist id="task-names">
        {props.names.map((n) => <option key={n} value={n} />)}
      </datalist>
      <input list="worker-names" placeholder="Worker" aria-label="Worker" value={worker} onChange={(e) => setWorker(e.target.value)} />
      <datalist id="worker-names">
        {props.workers.map((n) => <option key={n} value={n} />)}
      </datalist>
      <input list="queue-names" placeholder="Queue" aria-label="Queue" value={queue} onChange={(e) => setQueue(e.target.value)} className="narrow" />
      <datalist id="queue-names">
        {props.queues.map((n) => <option key={n} value={n} />)}
      </datalist>
      <SourceSelect params={params} set={set} />
      <input
        list="exception-types"
        placeholder="Exception type"
        aria-label="Exception type"
        title="Exact exception type, e.g. builtins.ValueError"
        value={excType}
        onFocus={() => setSuggestExc(true)}
        onChange={(e) => setExcType(e.target.value)}
      />
      <datalist id="exception-types">
        {knownExc.map((n) => <option key={n} value={n} />)}
      </datalist>
      {excTypes.slice(1).map((t, i) => (
        <button
          key={t}
          type="button"
          className="chip on exc-chip"
          title={t}
          aria-label={`Remove exception type filter ${t}`}
          onClick={() => set({ exception_type: excTypes.filter((_, j) => j !== i + 1) })}
        >
          {exceptionName(t)} ×
        </button>
      ))}
      <TimeRange params={params} set={set} />
      <div className="chips" role="group" aria-label="States">
        {TASK_STATES.map((s) => {
          const on = states.includes(s);
          return (
            <button
              key={s}
              type="button"
              className={`chip ${on ? `on st-${s.toLowerCase()}` : ''}`}
              aria-pressed={on}
              onClick={() => set({ state: on ? states.filter((x) => x !== s) : [...states, s] })}
            >
              {s}
            </button>
          );
        })}
      </div>
    </div>
  );
}

const COLUMNS = ['State', 'Name', 'Args', 'Worker', 'Queue', 'Received', 'Runtime', 'Retries', 'Exception'];

/** "42 tasks match", or "more than 200 match" while further pages exist (the API does not count). */
export function matchText(n: number, more: boolean): string {
  if (!n) return '';
  if (more) return `more than ${n.toLocaleString()} match`;
  return `${n.toLocaleString()} ${n === 1 ? 'task matches' : 'tasks match'}`;
}

interface TableProps {
  ref?: Ref<{ toTop: () => void }>;
  rows: TaskSummary[];
  onEnd: () => void;
  onHold: (h: { hover?: boolean; scrolled?: boolean }) => void;
  loadingMore: boolean;
  capped: boolean;
}

function TaskTable({ ref, rows, onEnd, onHold, loadingMore, capped }: TableProps) {
  const scrollRef = useRef<HTMLDivElement>(null);
  useImperativeHandle(ref, () => ({ toTop: () => scrollRef.current?.scrollTo({ top: 0 }) }), []);
  const navigate = useNavigate();
  const [cursor, setCursor] = useState(-1);
  const virt = useVirtualizer({ count: rows.length, getScrollElement: () => scrollRef.current, estimateSize: () => ROW_HEIGHT, overscan: 12 });
  const items = virt.getVirtualItems();
  const lastIndex = items.at(-1)?.index ?? 0;
  useEffect(() => {
    if (lastIndex >= rows.length - 40) onEnd();
  }, [lastIndex, rows.length, onEnd]);

  const onKey = (e: React.KeyboardEvent) => {
    if (e.key === 'ArrowDown' || e.key === 'j') {
      e.preventDefault();
      const n = Math.min(rows.length - 1, cursor + 1);
      setCursor(n);
      virt.scrollToIndex(n);
    } else if (e.key === 'ArrowUp' || e.key === 'k') {
      e.preventDefault();
      const n = Math.max(0, cursor - 1);
      setCursor(n);
      virt.scrollToIndex(n);
    } else if (e.key === 'Enter' && rows[cursor]) navigate(`/tasks/${rows[cursor].id}`);
  };

  return (
    <div
      className="table tasks-table"
      role="table"
      aria-label="Tasks"
      aria-rowcount={rows.length}
      onMouseEnter={() => onHold({ hover: true })}
      onMouseLeave={() => onHold({ hover: false })}
    >
      <div className="tr th" role="row">
        {COLUMNS.map((c) => <div key={c} role="columnheader" className={`td c-${c.toLowerCase()}`}>{c}</div>)}
      </div>
      <div
        className="tbody"
        role="rowgroup"
        ref={scrollRef}
        tabIndex={0}
        onKeyDown={onKey}
        onScroll={(e) => onHold({ scrolled: e.currentTarget.scrollTop > 4 })}
        aria-label="Task rows"
      >
        <div style={{ height: virt.getTotalSize(), position: 'relative' }}>
          {items.map((vi) => {
            const t = rows[vi.index];
            if (!t) return null;
            const due = scheduledFor(t);
            return (
              <div
                key={t.id}
                role="row"
                className={`tr${vi.index === cursor ? ' cursor' : ''}${t.exception_type ? ' failed' : ''}`}
                style={{ transform: `translateY(${vi.start}px)`, height: ROW_HEIGHT }}
                data-task-id={t.id}
                onClick={() => setCursor(vi.index)}
              >
                <div role="cell" className="td c-state">{due ? <ScheduledBadge state={t.state} eta={due} /> : <StateBadge state={t.state} />}</div>
                <div role="cell" className="td c-name">
                  <Link to={`/tasks/${t.id}`} title={`${t.name ?? '?'} · ${t.id}`}>{t.name ?? <em>unknown</em>}</Link>
                  {due && <> <ScheduledFor eta={due} /></>}
                </div>
                <div role="cell" className="td c-args mono" title={t.args_preview ?? ''}>{t.args_preview ? callText(t.name, t.args_preview) : ''}</div>
                <div role="cell" className="td c-worker" title={t.source ? `${t.source} · ${t.worker ?? ''}` : (t.worker ?? '')}>
                  {t.source && <span className="source-tag">{t.source}</span>}
                  {t.worker ?? '—'}
                </div>
                <div role="cell" className="td c-queue">{t.queue ?? '—'}</div>
                <div role="cell" className="td c-received"><Time ts={t.received_at ?? t.sent_at} /></div>
                <div role="cell" className="td c-runtime num"><Duration ms={t.runtime_ms} /></div>
                <div role="cell" className="td c-retries num">{t.retries || ''}</div>
                <div role="cell" className="td c-exception" title={t.exception_type ?? ''}>{exceptionName(t.exception_type)}</div>
              </div>
            );
          })}
        </div>
        {loadingMore && <div className="loading-more">Loading more…</div>}
        {capped && <div className="loading-more">Showing the first {rows.length.toLocaleString()} matches: narrow the filters or the time range to see older tasks.</div>}
      </div>
    </div>
  );
}
