// Failure groups as the UI lists them: the server's FAILURE groups plus LOST tasks grouped by name
// (a worker that died mid-task leaves no exception, and /api/failures counts FAILURE only).
import type { FailureGroup, TaskSummary } from '../api/types';

export interface Row {
  key: string;
  name: string | null;
  exceptionType: string | null;
  state: 'FAILURE' | 'LOST';
  count: number;
  lastSeen: string | null;
  message: string | null;
  latest: string | null;
}

export function lostRows(tasks: readonly TaskSummary[]): Row[] {
  const by = new Map<string, Row>();
  for (const t of tasks) {
    const key = `LOST|${t.name ?? ''}`;
    const seen = t.finished_at ?? t.started_at ?? t.received_at ?? t.sent_at;
    const row = by.get(key);
    if (row) {
      row.count += 1;
      if (seen && (!row.lastSeen || seen > row.lastSeen)) row.lastSeen = seen;
    } else {
      by.set(key, { key, name: t.name, exceptionType: null, state: 'LOST', count: 1, lastSeen: seen, message: 'worker lost while running it', latest: t.id });
    }
  }
  return [...by.values()];
}

export function failureRows(groups: readonly FailureGroup[]): Row[] {
  return groups.map((f) => ({
    key: `FAILURE|${f.name ?? ''}|${f.exception_type ?? ''}`, name: f.name, exceptionType: f.exception_type, state: 'FAILURE' as const,
    count: f.count, lastSeen: f.last_seen, message: f.sample_message, latest: f.last_task_id,
  }));
}

