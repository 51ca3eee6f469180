// Live updates: one SSE connection invalidates the TanStack Query caches it names. Paused by the user or
// automatically while the tab is hidden; when the stream fails, queries fall back to polling.
import { useQueryClient, type Query } from '@tanstack/react-query';
import { createContext, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import { buildUrl } from '../api/client';
import { prefixes as P } from '../queries/keys';
import { invalidationPlan, mergeChanges, taskDetailAffected, type StreamMessage } from './liveplan';

export type LiveStatus = 'live' | 'connecting' | 'reconnecting' | 'polling' | 'paused' | 'hidden';

interface Live {
  status: LiveStatus;
  paused: boolean;
  togglePaused: () => void;
  /** refetchInterval for queries: a number only while falling back to polling. */
  pollMs: number | false;
  /** When the stream dropped (epoch ms), while it is down; the data shown may be older than this. */
  droppedAt: number | null;
}

const LiveContext = createContext<Live>({ status: 'paused', paused: true, togglePaused: () => {}, pollMs: false, droppedAt: null });

const FLUSH_MS = 750;
const LIVE_MAX_PAGES = 2;

function loadedPages(q: Query): number {
  const data = q.state.data as { pages?: unknown[] } | undefined;
  return data?.pages?.length ?? 1;
}
const POLL_MS = 5000;
/** While polling, try the stream again this often: Live comes back by itself. */
const RETRY_MS = 10_000;

export function LiveProvider({ children }: { children: ReactNode }) {
  const qc = useQueryClient();
  const [paused, setPaused] = useState(false);
  const [hidden, setHidden] = useState(() => typeof document !== 'undefined' && document.hidden);
  const [status, setStatus] = useState<LiveStatus>('connecting');
  const [droppedAt, setDroppedAt] = useState<number | null>(null);
  const [attempt, setAttempt] = useState(0);
  const pending = useRef<StreamMessage>({});
  const hadConnection = useRef(false);

  useEffect(() => {
    const onVis = () => setHidden(document.hidden);
    document.addEventListener('visibilitychange', onVis);
    return () => document.removeEventListener('visibilitychange', onVis);
  }, []);

  useEffect(() => {
    if (paused || hidden) {
      setStatus(paused ? 'paused' : 'hidden');
      return;
    }
    if (typeof EventSource === 'undefined') {
      setStatus('polling');
      return;
    }
    setStatus(hadConnection.current ? 'reconnecting' : 'connecting');
    const es = new EventSource(buildUrl('/stream', { topics: 'tasks,workflows,workers' }));
    let timer: number | undefined;
    let failures = 0;
    const flush = () => {
      timer = undefined;
      const plan = invalidationPlan(pending.current);
      pending.current = {};
      for (const key of plan.prefixes) {
        if (key === P.tasks) {
          // A list scrolled deep into its pages stays put (refetching every page on each event would
          // cost one request per page); it is marked stale and refreshes when revisited.
          void qc.invalidateQueries({ queryKey: [...key], predicate: (q: Query) => loadedPages(q) <= LIVE_MAX_PAGES });
          void qc.invalidateQueries({ queryKey: [...key], refetchType: 'none' });
        } else void qc.invalidateQueries({ queryKey: [...key] });
      }
      if (plan.taskIds.size) {
        void qc.invalidateQueries({
          queryKey: [...P.task],
          predicate: (q: Query) =>
            taskDetailAffected(String(q.queryKey[1]), q.state.data as { child_tasks?: { id: string }[] } | undefined, plan.taskIds),
        });
      }
      if (plan.workflowIds.size || plan.taskIds.size) {
        void qc.invalidateQueries({
          queryKey: [...P.workflow],
          predicate: (q: Query) => {
            const data = q.state.data as { id?: string; root_id?: string | null } | undefined;
            const key = String(q.queryKey[1]);
            return plan.workflowIds.has(key) || plan.taskIds.has(key) ||
              (data?.id !== undefined && plan.workflowIds.has(data.id)) ||
              (data?.root_id != null && plan.workflowIds.has(data.root_id));
          },
        });
      }
    };
    let opened = false;
    let retry: number | undefined;
    es.onopen = () => {
      failures = 0;
      setStatus('live');
      setDroppedAt(null);
      // Changes made while paused, hidden or disconnected were never announced: catch up once.
      if (!opened && hadConnection.current) void qc.invalidateQueries();
      opened = true;
      hadConnection.current = true;
    };
    es.onmessage = (ev: MessageEvent<string>) => {
      try {
        pending.current = mergeChanges(pending.current, JSON.parse(ev.data) as StreamMessage);
      } catch {
        return;
      }
      timer ??= window.setTimeout(flush, FLUSH_MS);
    };
    es.onerror = () => {
      failures += 1;
      if (hadConnection.current) setDroppedAt((d) => d ?? Date.now());
      // EventSource retries by itself; after repeated failures, poll instead of waiting on it, and
      // try the stream again now and then so Live returns without a reload.
      if (failures >= 3) {
        es.close();
        setStatus('polling');
        retry = window.setTimeout(() => setAttempt((a) => a + 1), RETRY_MS);
      } else setStatus(hadConnection.current ? 'reconnecting' : 'connecting');
    };
    return () => {
      es.close();
      if (timer !== undefined) window.clearTimeout(timer);
      if (retry !== undefined) window.clearTimeout(retry);
    };
  }, [paused, hidden, qc, attempt]);

  const value = useMemo<Live>(
    () => ({
      status, paused, togglePaused: () => setPaused((p) => !p),
      // Reconnecting or polling: keep the data fresh by asking, until the stream is back.
      pollMs: status === 'polling' || status === 'reconnecting' ? POLL_MS : false,
      droppedAt: status === 'live' || paused ? null : droppedAt,
    }),
    [status, paused, droppedAt],
  );
  return <LiveContext.Provider value={value}>{children}</LiveContext.Provider>;
}

export function useLive(): Live {
  return useContext(LiveContext);
}
