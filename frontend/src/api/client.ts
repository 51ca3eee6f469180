// HTTP access to the stemtrace server. The API base comes from <meta name="stemtrace-root">, which the
// server injects when it runs under a --root-path prefix.
import type {
  FailureList, TaskDetail, TaskNameList, TaskPage, TaskStatsList, WorkerList, WorkflowDetail, WorkflowPage,
} from './types';

export class ApiError extends Error {
  readonly status: number;
  readonly detail: unknown;
  constructor(status: number, message: string, detail?: unknown) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.detail = detail;
  }
}

export function apiRoot(): string {
  const meta = typeof document !== 'undefined' ? document.querySelector('meta[name="stemtrace-root"]') : null;
  const root = meta?.getAttribute('content') ?? '';
  return root.replace(/\/+$/, '');
}

export type Query = Record<string, string | number | boolean | readonly string[] | null | undefined>;

export function buildUrl(path: string, query: Query = {}, root = apiRoot()): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) for (const item of v) params.append(k, String(item));
    else params.append(k, String(v));
  }
  const qs = params.toString();
  return `${root}/api${path}${qs ? `?${qs}` : ''}`;
}

async function getJson<T>(path: string, query?: Query, signal?: AbortSignal): Promise<T> {
  let res: Response;
  try {
    res = await fetch(buildUrl(path, query), { signal, headers: { Accept: 'application/json' } });
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    throw new ApiError(0, `Cannot reach the stemtrace server (${(err as Error).message}).`);
  }
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`;
    let detail: unknown;
    try {
      const body = (await res.json()) as { error?: { message?: string; detail?: unknown }; detail?: unknown };
      if (body.error?.message) message = body.error.message;
      detail = body.error?.detail ?? body.detail;
    } catch {
      // Not JSON (a proxy's error page): keep the status line.
    }
    throw new ApiError(res.status, message, detail);
  }
  return (await res.json()) as T;
}

export interface TaskFilters {
  name?: string;
  state?: readonly string[];
  /** Exact exception types (TaskSummary.exception_type), any of. */
  exception_type?: readonly string[];
  worker?: string;
  queue?: string;
  q?: string;
  since?: string;
  until?: string;
  workflow?: string;
}

export const api = {
  tasks: (f: TaskFilters, cursor: string | null, limit: number, signal?: AbortSignal) =>
    getJson<TaskPage>('/tasks', { ...f, cursor, limit }, signal),
  task: (id: string, signal?: AbortSignal) => getJson<TaskDetail>(`/tasks/${encodeURIComponent(id)}`, {}, signal),
  workflows: (f: { state?: string; name?: string; since?: string; until?: string }, cursor: string | null, limit: number, signal?: AbortSignal) =>
    getJson<WorkflowPage>('/workflows', { ...f, cursor, limit }, signal),
  workflow: (id: string, plumbing: boolean, signal?: AbortSignal) =>
    getJson<WorkflowDetail>(`/workflows/${encodeURIComponent(id)}`, { plumbing: plumbing || undefined }, signal),
  workers: (signal?: AbortSignal) => getJson<WorkerList>('/workers', {}, signal),
  taskNames: (signal?: AbortSignal) => getJson<TaskNameList>('/task-names', {}, signal),
  failures: (f: { since?: string; name?: string }, signal?: AbortSignal) =>
    getJson<FailureList>('/failures', { ...f, limit: 500 }, signal),
  stats: (f: { since?: string; name?: string }, signal?: AbortSignal) => getJson<TaskStatsList>('/stats/tasks', f, signal),
};
