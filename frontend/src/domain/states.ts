// Task states in Celery's vocabulary plus stemtrace's PLANNED/SKIPPED/LOST, and how the UI shows them.
export const TASK_STATES = [
  'PLANNED', 'PENDING', 'RECEIVED', 'STARTED', 'RETRY', 'SUCCESS',
  'FAILURE', 'REVOKED', 'REJECTED', 'IGNORED', 'LOST', 'SKIPPED',
] as const;
export type TaskState = (typeof TASK_STATES)[number];

const FAILED = new Set(['FAILURE', 'REVOKED', 'REJECTED', 'LOST']);
const RUNNING = new Set(['PENDING', 'RECEIVED', 'STARTED', 'RETRY']);
const INACTIVE = new Set(['PLANNED', 'SKIPPED', 'IGNORED']);

export function isFailed(state: string): boolean {
  return FAILED.has(state);
}
export function isRunning(state: string): boolean {
  return RUNNING.has(state);
}
/** PLANNED and SKIPPED tasks never ran (yet): drawn greyed out. */
export function isInactive(state: string): boolean {
  return INACTIVE.has(state);
}
export function isTerminal(state: string): boolean {
  return !RUNNING.has(state) && state !== 'PLANNED';
}

/** The CSS class suffix for a state; unknown states fall back to a neutral look. */
export function stateClass(state: string): string {
  return (TASK_STATES as readonly string[]).includes(state) ? state.toLowerCase() : 'unknown';
}

/** Order used for count breakdowns: problems first, then work in progress, then the rest. */
const ORDER: readonly string[] = [
  'FAILURE', 'LOST', 'REVOKED', 'REJECTED', 'RETRY', 'STARTED', 'RECEIVED',
  'PENDING', 'SUCCESS', 'IGNORED', 'PLANNED', 'SKIPPED',
];
export function sortedCounts(counts: Record<string, number>): [string, number][] {
  const rank = (s: string) => {
    const i = ORDER.indexOf(s);
    return i < 0 ? ORDER.length : i;
  };
  return Object.entries(counts)
    .filter(([, n]) => n > 0)
    .sort((a, b) => rank(a[0]) - rank(b[0]) || a[0].localeCompare(b[0]));
}

/** Roll-up of many task states into one, as a collapsed fan-out shows it. */
export function rollUp(counts: Record<string, number>): string {
  const has = (s: string) => (counts[s] ?? 0) > 0;
  for (const s of ['FAILURE', 'LOST', 'REVOKED', 'REJECTED']) if (has(s)) return s;
  for (const s of ['STARTED', 'RETRY', 'RECEIVED', 'PENDING']) if (has(s)) return s;
  if (has('SUCCESS')) return 'SUCCESS';
  const first = sortedCounts(counts)[0];
  return first ? first[0] : 'PENDING';
}
