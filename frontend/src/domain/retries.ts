// Retry storms for the "Needs attention" page: task names whose tasks keep retrying. Each retry is a
// message re-sent with a countdown, so a storm loads the broker and the workers while nothing fails yet.

export const STORM_MIN_RETRIES = 5;
export const STORM_MIN_SHARE = 0.1;

export interface RetryCounts {
  name: string;
  total: number;
  /** Tasks that retried at least once. */
  retried?: number;
  /** Retries in all (a task retried three times counts three). */
  retries?: number;
}

/** The names with at least STORM_MIN_RETRIES retries where at least STORM_MIN_SHARE of the tasks retried,
 * most retries first. */
export function retryStorms<T extends RetryCounts>(stats: T[]): T[] {
  return stats
    .filter((s) => (s.retries ?? 0) >= STORM_MIN_RETRIES && s.total > 0 && (s.retried ?? 0) / s.total >= STORM_MIN_SHARE)
    .sort((a, b) => (b.retries ?? 0) - (a.retries ?? 0) || a.name.localeCompare(b.name));
}
