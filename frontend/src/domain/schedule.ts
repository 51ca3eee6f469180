// Scheduled work: a task sent with an ETA or countdown waits for it (a worker holds it RECEIVED until then).
// The same rule as the server's roll-up (core/rollup.py `is_scheduled`), which sets a workflow's
// `scheduled_for` when every unfinished task waits like this.

const WAITING = new Set(['PENDING', 'RECEIVED', 'RETRY']);

/** When the task is due, while it waits for its ETA/countdown; null when it is not scheduled. */
export function scheduledFor(t: { eta?: string | null; state: string }): string | null {
  return t.eta && WAITING.has(t.state) ? t.eta : null;
}

/** An ETA already past: the task should have started (the attention page lists it as stuck after a minute). */
export function isOverdue(eta: string, now: number = Date.now()): boolean {
  const t = Date.parse(eta);
  return Number.isFinite(t) && t < now;
}
