// Every TanStack Query key the UI uses, in one place: pages read through the hooks in `hooks.ts`, and the
// live-update code invalidates by these names instead of knowing the keys' shapes.
import type { TaskFilters } from '../api/client';

/** A list's filters as cached: time presets ("1h") rather than the instant they resolve to. */
export type ListKey = Record<string, string | readonly string[] | undefined>;

export const keys = {
  tasks: (f: ListKey) => ['tasks', f] as const,
  task: (id: string | null) => ['task', id] as const,
  ancestors: (id: string, parent: string | null) => ['ancestors', id, parent] as const,
  workflows: (f: ListKey) => ['workflows', f] as const,
  workflow: (id: string, plumbing: boolean) => ['workflow', id, plumbing] as const,
  workers: (expired = false, source?: string) => ['workers', expired, source ?? null] as const,
  taskNames: (source?: string) => ['task-names', source ?? null] as const,
  failures: (range: string, source?: string) => ['failures', range, source ?? null] as const,
  exceptionTypes: () => ['failures', 'exception-types'] as const,
  stats: (range: string, source?: string) => ['stats', range, source ?? null] as const,
  stuck: (source?: string) => ['stuck', source ?? null] as const,
  health: () => ['health'] as const,
  quarantine: () => ['quarantine'] as const,
  beat: (range: string, source?: string) => ['beat', range, source ?? null] as const,
  beatEntry: (entry: string, source?: string) => ['beat-entry', entry, source ?? null] as const,
};

/** Key prefixes, each covering every query of one kind: what a stream message invalidates. */
export const prefixes = {
  tasks: ['tasks'],
  task: ['task'],
  workflows: ['workflows'],
  workflow: ['workflow'],
  workers: ['workers'],
  taskNames: ['task-names'],
  failures: ['failures'],
  stats: ['stats'],
  stuck: ['stuck'],
  health: ['health'],
  quarantine: ['quarantine'],
} as const satisfies Record<string, readonly string[]>;

/** The list key of task filters: `since` moves with the clock, so a preset range is keyed by name. */
export function taskListKey(f: TaskFilters, range: string | null): ListKey {
  return { ...f, since: range === 'custom' || !range ? f.since : range };
}
