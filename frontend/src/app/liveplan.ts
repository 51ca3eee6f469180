// What a batch of stream messages invalidates (pure, so it is unit-tested), named by the query prefixes
// of `queries/keys.ts`.
import { prefixes as P } from '../queries/keys';

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
  prefixes: (readonly string[])[];
  taskIds: Set<string>;
  workflowIds: Set<string>;
}

export function invalidationPlan(m: StreamMessage): InvalidationPlan {
  const prefixes: (readonly string[])[] = [];
  const taskIds = new Set(m.tasks ?? []);
  const workflowIds = new Set(m.workflows ?? []);
  if (taskIds.size) prefixes.push(P.tasks, P.failures, P.stats, P.taskNames, P.stuck);
  if (workflowIds.size) prefixes.push(P.workflows);
  if (m.workers?.length) prefixes.push(P.workers, P.stuck);
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
