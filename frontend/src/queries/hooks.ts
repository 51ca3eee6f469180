// Query hooks: each page's data, keyed by `keys`, refreshed by the live stream (or by polling when the
// stream is down, through `useLive().pollMs`).
import { keepPreviousData, useInfiniteQuery, useQuery } from '@tanstack/react-query';
import { api, type TaskFilters, type WorkflowFilters } from '../api/client';
import { useLive } from '../app/live';
import { rangeToSince } from '../domain/time';
import { keys, taskListKey } from './keys';

export const TASK_PAGE = 200;

export function useTaskList(filters: TaskFilters, range: string | null, pageSize = TASK_PAGE) {
  const live = useLive();
  return useInfiniteQuery({
    queryKey: keys.tasks(taskListKey(filters, range)),
    queryFn: ({ pageParam, signal }) => api.tasks(filters, pageParam, pageSize, signal),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor,
    placeholderData: keepPreviousData,
    refetchInterval: live.pollMs,
  });
}

export function useTask(id: string | null) {
  const live = useLive();
  return useQuery({
    queryKey: keys.task(id),
    queryFn: ({ signal }) => api.task(id ?? '', signal),
    enabled: !!id,
    refetchInterval: live.pollMs,
  });
}

export function useWorkflowList(filters: WorkflowFilters, range: string | null) {
  const live = useLive();
  return useInfiniteQuery({
    queryKey: keys.workflows({ ...filters, since: range === 'custom' || !range ? filters.since : range }),
    queryFn: ({ pageParam, signal }) => api.workflows(filters, pageParam, 100, signal),
    initialPageParam: null as string | null,
    getNextPageParam: (p) => p.next_cursor,
    placeholderData: keepPreviousData,
    refetchInterval: live.pollMs,
  });
}

export function useWorkflow(id: string, plumbing: boolean) {
  const live = useLive();
  return useQuery({
    queryKey: keys.workflow(id, plumbing),
    queryFn: ({ signal }) => api.workflow(id, plumbing, signal),
    // Finished workflows do not change: stop polling them.
    refetchInterval: (query) => (query.state.data && query.state.data.state !== 'RUNNING' ? false : live.pollMs),
  });
}

export function useWorkers(staleTime?: number, expired = false, source?: string) {
  const live = useLive();
  return useQuery({
    queryKey: keys.workers(expired, source),
    queryFn: ({ signal }) => api.workers(signal, expired, source),
    refetchInterval: live.pollMs || 15_000,
    staleTime,
  });
}

export function useTaskNames(source?: string) {
  return useQuery({ queryKey: keys.taskNames(source), queryFn: ({ signal }) => api.taskNames(signal, source), staleTime: 30_000 });
}

/** Failure groups of a period: `range` is a preset ("24h") or "all"; `source`: of that event source. */
export function useFailures(range: string, source?: string) {
  const live = useLive();
  return useQuery({
    queryKey: keys.failures(range, source),
    queryFn: ({ signal }) => api.failures({ since: rangeToSince(range === 'all' ? null : range), source }, signal),
    refetchInterval: live.pollMs,
  });
}

/** Exception types that failed lately, for the filter's suggestions; fetched once asked. */
export function useExceptionTypes(enabled: boolean) {
  return useQuery({
    queryKey: keys.exceptionTypes(),
    queryFn: ({ signal }) => api.failures({ since: rangeToSince('7d') }, signal),
    enabled,
    staleTime: 60_000,
  });
}

export function useStats(range: string, source?: string) {
  const live = useLive();
  return useQuery({
    queryKey: keys.stats(range, source),
    queryFn: ({ signal }) => api.stats({ since: rangeToSince(range), source }, signal),
    refetchInterval: live.pollMs,
  });
}

export function useStuck(source?: string) {
  const live = useLive();
  return useQuery({ queryKey: keys.stuck(source), queryFn: ({ signal }) => api.stuck(signal, source), refetchInterval: live.pollMs || 30_000 });
}

export function useHealth() {
  return useQuery({ queryKey: keys.health(), queryFn: ({ signal }) => api.health(signal), refetchInterval: 15_000 });
}

/** Events ingest set aside instead of storing (malformed, unreadable), by reason and event type. */
export function useQuarantine() {
  return useQuery({ queryKey: keys.quarantine(), queryFn: ({ signal }) => api.quarantine(signal), refetchInterval: 30_000 });
}

const MAX_DEPTH = 25;

/** The chain of parents up to the root (usually a few levels; bounded in case of a cycle in bad data). */
export function useAncestors(id: string, parentId: string | null) {
  return useQuery({
    queryKey: keys.ancestors(id, parentId),
    enabled: !!parentId,
    queryFn: async ({ signal }) => {
      const chain: { id: string; name: string | null }[] = [];
      let next = parentId;
      const seen = new Set([id]);
      while (next && !seen.has(next) && chain.length < MAX_DEPTH) {
        const cur: string = next;
        seen.add(cur);
        try {
          const t = await api.task(cur, signal);
          chain.unshift({ id: t.id, name: t.name });
          next = t.parent_id;
        } catch {
          chain.unshift({ id: cur, name: null });
          break;
        }
      }
      return chain;
    },
    staleTime: 60_000,
  });
}

/** One page of a workflow's tasks: their argument previews tell same-named siblings apart. */
export function useWorkflowMembers(workflowId: string) {
  return useQuery({
    queryKey: keys.tasks({ workflow: workflowId, members: '1' }),
    queryFn: ({ signal }) => api.tasks({ workflow: workflowId }, null, 1000, signal),
    staleTime: 30_000,
  });
}

/** LOST tasks of a period (the failure groups count FAILURE only): grouped by name on the home page. */
export function useLostTasks(range: string, source?: string) {
  const live = useLive();
  return useQuery({
    queryKey: keys.tasks({ state: ['LOST'], since: range, lost: '1', source }),
    queryFn: ({ signal }) => api.tasks({ state: ['LOST'], since: rangeToSince(range), source }, null, 1000, signal),
    refetchInterval: live.pollMs,
  });
}

/** Celery beat schedule entries with their latest runs and missed runs since the start of `range`. */
export function useBeat(range: string, source?: string) {
  const live = useLive();
  return useQuery({
    queryKey: keys.beat(range, source),
    queryFn: ({ signal }) => api.beat(rangeToSince(range), source, signal),
    // Not named by the live stream (it announces tasks, not entries): refreshed on a timer.
    refetchInterval: live.pollMs || 10_000,
  });
}

/** One entry's runs, newest first, page by page (`source`: whose entry it is, when several have one). */
export function useBeatEntry(entry: string | null, source?: string, pageSize = 200) {
  const live = useLive();
  return useInfiniteQuery({
    queryKey: keys.beatEntry(entry ?? '', source),
    queryFn: ({ pageParam, signal }) => api.beatEntry(entry ?? '', source, pageParam, pageSize, signal),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor,
    enabled: !!entry,
    refetchInterval: live.pollMs || 10_000,
  });
}
