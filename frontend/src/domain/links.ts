// Links to the task list filtered exactly as a count says: every number on a page opens its tasks.
export interface TaskLinkFilters {
  workflow?: string;
  name?: string | null;
  state?: string | readonly string[];
  worker?: string;
  exception_type?: string | null;
  range?: string | null;
  /** A fan-out's members: its group id, or the parent whose children it gathers. */
  group?: string | null;
  parent?: string | null;
  /** The event source (the server's --source NAME) the page is scoped to. */
  source?: string | null;
}

/** Failed, as the UI counts it: FAILURE and the states that ended a task without success. */
export const FAILED_STATES = ['FAILURE', 'LOST', 'REVOKED', 'REJECTED'] as const;
/** Not finished yet. */
export const RUNNING_STATES = ['STARTED', 'RETRY', 'RECEIVED', 'PENDING'] as const;

export function tasksLink(f: TaskLinkFilters): string {
  const p = new URLSearchParams();
  if (f.name) p.set('name', f.name);
  for (const s of typeof f.state === 'string' ? [f.state] : f.state ?? []) p.append('state', s);
  if (f.exception_type) p.set('exception_type', f.exception_type);
  if (f.worker) p.set('worker', f.worker);
  if (f.workflow) p.set('workflow', f.workflow);
  if (f.group) p.set('group', f.group);
  if (f.parent) p.set('parent', f.parent);
  if (f.range && f.range !== 'all') p.set('range', f.range);
  if (f.source) p.set('source', f.source);
  const qs = p.toString();
  return `/tasks${qs ? `?${qs}` : ''}`;
}
