// One definition of waiting, shared by the task page and the Gantt: an attempt is
//   queued   — sent (a retry: when the attempt before it ended) → received by a worker,
//   reserved — received → started (prefetched, or held until its ETA),
//   run      — started → finished.
// "Was it slow to start?" is answered by queued + reserved; which of the two says where it sat.
import { parseTs } from './time';

export interface Phases {
  queued: number | null;
  reserved: number | null;
  run: number | null;
}

export interface AttemptTimes {
  received_at?: string | null;
  started_at?: string | null;
  finished_at?: string | null;
  runtime_ms?: number | null;
}

const span = (a: number | null, b: number | null) => (a === null || b === null ? null : Math.max(0, b - a));

/** The three phases of each attempt of a task sent at `sentAt`. */
export function attemptPhases(sentAt: string | null | undefined, attempts: readonly AttemptTimes[]): Phases[] {
  let queuedAt = parseTs(sentAt);
  return attempts.map((a) => {
    const received = parseTs(a.received_at);
    const started = parseTs(a.started_at);
    const finished = parseTs(a.finished_at);
    // A retry seen before the previous attempt's end (clock skew between hosts) has no queue figure.
    const from = queuedAt !== null && received !== null && queuedAt <= received ? queuedAt : null;
    const out: Phases = {
      queued: span(from, received),
      reserved: span(received, started),
      run: a.runtime_ms ?? span(started, finished),
    };
    queuedAt = finished ?? null;
    return out;
  });
}

/** "queued 721 ms · reserved 29 ms · run 5 ms", leaving out what is unknown. */
export function phasesText(p: Phases, format: (ms: number) => string): string {
  const parts: string[] = [];
  if (p.queued !== null) parts.push(`queued ${format(p.queued)}`);
  if (p.reserved !== null) parts.push(`reserved ${format(p.reserved)}`);
  if (p.run !== null) parts.push(`run ${format(p.run)}`);
  return parts.join(' · ');
}
