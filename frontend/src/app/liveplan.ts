// What a batch of stream messages invalidates (pure, so it is unit-tested).
export interface StreamMessage {
  tasks?: string[];
  workflows?: string[];
  workers?: string[];
}

export function mergeChanges(a: StreamMessage, b: StreamMessage): StreamMessage {
  const u = (x?: string[], y?: string[]) => (x || y ? [...new Set([...(x ?? []), ...(y ?? [])])] : undefined);
  const out: StreamMessage = {};
  const tasks = u(a.tasks, b.tasks);
  const workflows = u(a.workflows, b.workflows);
  const workers = u(a.workers, b.workers);
  if (tasks) out.tasks = tasks;
  if (workflows) out.workflows = workflows;
  if (workers) out.workers = workers;
  return out;
}

export interface InvalidationPlan {
  prefixes: string[][];
  taskIds: Set<string>;
  workflowIds: Set<string>;
}

export function invalidationPlan(m: StreamMessage): InvalidationPlan {
  const prefixes: string[][] = [];
  const taskIds = new Set(m.tasks ?? []);
  const workflowIds = new Set(m.workflows ?? []);
  if (taskIds.size) prefixes.push(['tasks'], ['failures'], ['stats'], ['task-names']);
  if (workflowIds.size) prefixes.push(['workflows']);
  if (m.workers?.length) prefixes.push(['workers']);
  return { prefixes, taskIds, workflowIds };
}

/** A loaded task detail is stale when the task changed or one of the children it lists did (their states show). */
export function taskDetailAffected(
  taskId: string,
  data: { child_tasks?: readonly { id: string }[] } | undefined,
  changed: ReadonlySet<string>,
): boolean {
  return changed.has(taskId) || !!data?.child_tasks?.some((c) => changed.has(c.id));
}
