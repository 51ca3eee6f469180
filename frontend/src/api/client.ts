// HTTP access to the stemtrace server through a client generated from the committed OpenAPI spec
// (openapi-fetch over `schema.gen.ts`): paths, parameters and answers are checked by the compiler, so a
// spec change that breaks the UI fails `npm run typecheck`. The API base comes from
// <meta name="stemtrace-root">, which the server injects when it runs under a --root-path prefix.
import createClient from 'openapi-fetch';
import type { paths } from './schema.gen';

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

/** A URL under the API (EventSource needs a plain URL, not a client call). */
export function buildUrl(path: string, query: Query = {}, root = apiRoot()): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(clean(query))) {
    if (Array.isArray(v)) for (const item of v) params.append(k, String(item));
    else params.append(k, String(v));
  }
  const qs = params.toString();
  return `${root}/api${path}${qs ? `?${qs}` : ''}`;
}

/** Drops empty parameters: the server reads `name=` as "the name is empty", not "any name". */
function clean<T extends Query>(query: T): T {
  const out: Query = {};
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v) && v.length === 0) continue;
    out[k] = v;
  }
  return out as T;
}

const origin = typeof location !== 'undefined' ? location.origin : 'http://localhost';
const http = createClient<paths>({
  baseUrl: `${origin}${apiRoot()}`,
  headers: { Accept: 'application/json' },
  // Looked up on every call, so tests (and msw) that replace fetch after import are honoured.
  fetch: (req) => globalThis.fetch(req),
});

interface Answer<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/** Turns openapi-fetch's answer into the data, or an ApiError carrying the server's message. */
async function unwrap<T>(call: Promise<Answer<T>>): Promise<T> {
  let res: Answer<T>;
  try {
    res = await call;
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    throw new ApiError(0, `Cannot reach the stemtrace server (${(err as Error).message}).`);
  }
  if (!res.response.ok || res.data === undefined) {
    const r = res.response;
    const body = res.error as { error?: { message?: string; detail?: unknown }; detail?: unknown } | string | undefined;
    let message = `${r.status} ${r.statusText}`.trim();
    let detail: unknown;
    if (body && typeof body === 'object') {
      if (body.error?.message) message = body.error.message;
      detail = body.error?.detail ?? body.detail;
    }
    throw new ApiError(r.status, message, detail);
  }
  return res.data;
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
  /** Members of this group or chord header (its group id). */
  group?: string;
  /** Children of this task. */
  parent?: string;
  /** Runs of this celery beat schedule entry. */
  beat?: string;
  /** Tasks of this event source (the server's --source NAME). */
  source?: string;
}

export interface WorkflowFilters {
  state?: string;
  name?: string;
  since?: string;
  until?: string;
  /** Workflows of this event source (the server's --source NAME). */
  source?: string;
}

export interface PeriodFilters {
  since?: string;
  name?: string;
  /** Of this event source only (the server's --source NAME). */
  source?: string;
}

type TasksQuery = NonNullable<paths['/api/tasks']['get']['parameters']['query']>;

export const api = {
  tasks: (f: TaskFilters, cursor: string | null, limit: number, signal?: AbortSignal) =>
    unwrap(http.GET('/api/tasks', {
      params: { query: clean({ ...f, state: f.state ? [...f.state] : undefined, exception_type: f.exception_type ? [...f.exception_type] : undefined, cursor, limit }) as TasksQuery },
      signal,
    })),
  task: (id: string, signal?: AbortSignal) =>
    unwrap(http.GET('/api/tasks/{task_id}', { params: { path: { task_id: id } }, signal })),
  workflows: (f: WorkflowFilters, cursor: string | null, limit: number, signal?: AbortSignal) =>
    unwrap(http.GET('/api/workflows', {
      params: { query: clean({ ...f, state: f.state ? [f.state] : undefined, cursor, limit }) },
      signal,
    })),
  workflow: (id: string, plumbing: boolean, signal?: AbortSignal) =>
    unwrap(http.GET('/api/workflows/{workflow_id}', {
      params: { path: { workflow_id: id }, query: plumbing ? { plumbing } : {} },
      signal,
    })),
  workers: (signal?: AbortSignal, expired = false, source?: string) =>
    unwrap(http.GET('/api/workers', { params: { query: clean({ expired: expired || undefined, source }) }, signal })),
  taskNames: (signal?: AbortSignal, source?: string) =>
    unwrap(http.GET('/api/task-names', { params: { query: clean({ source }) }, signal })),
  failures: (f: PeriodFilters, signal?: AbortSignal) =>
    unwrap(http.GET('/api/failures', { params: { query: clean({ ...f, limit: 500 }) }, signal })),
  stats: (f: PeriodFilters, signal?: AbortSignal) =>
    unwrap(http.GET('/api/stats/tasks', { params: { query: clean({ ...f }) }, signal })),
  stuck: (signal?: AbortSignal, source?: string) =>
    unwrap(http.GET('/api/stuck', { params: { query: clean({ source }) }, signal })),
  health: (signal?: AbortSignal) => unwrap(http.GET('/api/health', { signal })),
  quarantine: (signal?: AbortSignal) => unwrap(http.GET('/api/quarantine', { signal })),
  beat: (since: string | undefined, source: string | undefined, signal?: AbortSignal) =>
    unwrap(http.GET('/api/beat', { params: { query: clean({ since, source }) }, signal })),
  beatEntry: (entry: string, source: string | undefined, cursor: string | null, limit: number, signal?: AbortSignal) =>
    unwrap(http.GET('/api/beat/{entry}', { params: { path: { entry }, query: clean({ cursor, limit, source }) }, signal })),
};
