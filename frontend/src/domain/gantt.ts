// Gantt timeline layout: one bar per task split into queue wait and run, in lanes by task or by worker.
// A task that ran more than once (retried, redelivered) gets one bar per attempt, from the graph's attempt_spans.
import type { WorkflowAttemptSpan, WorkflowNode } from '../api/types';
import { parseTs } from './time';

export type LaneMode = 'task' | 'worker';

export interface GanttBar {
  /** The task's id (every attempt of a task shares it). */
  id: string;
  /** 1-based attempt number when the bar is one attempt of a retried task, else null. */
  attempt: number | null;
  name: string;
  state: string;
  worker: string | null;
  attempts: number;
  /** When it was queued (sent; a retry: when the attempt before it ended); null when unknown. */
  queued: number | null;
  /** When a worker received it (queued → received is "queued", received → start "reserved"). */
  received: number | null;
  /** When it started running; null when it never started. */
  start: number | null;
  end: number;
  running: boolean;
}

export interface GanttRow {
  key: string;
  label: string;
  bars: GanttBar[];
}

export interface GanttLayout {
  t0: number;
  t1: number;
  rows: GanttRow[];
  /** Row index of each task's bar, for scrolling a selection into view. */
  rowOf: Map<string, number>;
}

export function toBar(n: WorkflowNode, now: number): GanttBar | null {
  const queued = parseTs(n.sent_at) ?? parseTs(n.received_at);
  const start = parseTs(n.started_at);
  const finished = parseTs(n.finished_at);
  const begin = queued ?? start;
  if (begin === null) return null;
  const running = finished === null;
  const end = finished ?? Math.max(now, start ?? begin);
  return {
    id: n.id, attempt: null, name: n.name ?? n.id, state: n.state, worker: n.worker, attempts: n.attempts,
    queued, received: parseTs(n.received_at), start, end, running,
  };
}

/** One attempt of a task, as the workflow graph's `attempt_spans` gives it. */
export type AttemptSpan = Pick<WorkflowAttemptSpan, 'number' | 'worker' | 'received_at' | 'started_at' | 'finished_at'> & { state: string };

/**
 * One bar per attempt. The first waits from when the task was sent; a retry from when the attempt
 * before it ended (that is when the retry was queued), or from when it was received if that is
 * unknown. An attempt that never finished but was followed by another (its worker was lost) ends
 * where the next one begins, not at `now`.
 */
export function attemptBars(n: WorkflowNode, attempts: readonly AttemptSpan[], now: number): GanttBar[] {
  const out: GanttBar[] = [];
  let prevEnd: number | null = null;
  attempts.forEach((a, i) => {
    const received = parseTs(a.received_at);
    const start = parseTs(a.started_at);
    const finished = parseTs(a.finished_at);
    const next = attempts[i + 1];
    const nextBegin = next ? parseTs(next.received_at) ?? parseTs(next.started_at) : null;
    const firstSeen = received ?? start;
    let queued: number | null;
    if (i === 0) queued = parseTs(n.sent_at) ?? received;
    else queued = prevEnd !== null && (firstSeen === null || prevEnd <= firstSeen) ? prevEnd : received;
    const begin = queued ?? start;
    const end = finished ?? nextBegin ?? Math.max(now, start ?? begin ?? now);
    prevEnd = finished ?? nextBegin;
    if (begin === null) return;
    out.push({
      id: n.id, attempt: a.number, name: n.name ?? n.id, state: a.state, worker: a.worker ?? (start !== null ? n.worker : null),
      attempts: attempts.length, queued, received, start, end: Math.max(end, begin), running: finished === null && nextBegin === null,
    });
  });
  return out;
}

/** The bars of one task: one per attempt when it ran more than once, else one for the task. */
export function taskBars(n: WorkflowNode, now: number): GanttBar[] {
  // A payload from an older server has no attempt_spans at all (undefined): one bar, as for null.
  const spans = n.attempt_spans;
  if (spans && spans.length > 1) {
    const bars = attemptBars(n, spans, now);
    if (bars.length) return bars;
  }
  const b = toBar(n, now);
  return b ? [b] : [];
}

const barStart = (b: GanttBar) => b.queued ?? b.start ?? b.end;

export function ganttLayout(nodes: readonly WorkflowNode[], mode: LaneMode, now: number): GanttLayout {
  const bars: GanttBar[] = [];
  for (const n of nodes) bars.push(...taskBars(n, now));
  bars.sort((a, b) => barStart(a) - barStart(b) || a.id.localeCompare(b.id));
  let t0 = Infinity;
  let t1 = -Infinity;
  for (const b of bars) {
    t0 = Math.min(t0, barStart(b));
    t1 = Math.max(t1, b.end);
  }
  if (!bars.length) {
    t0 = now;
    t1 = now;
  }
  if (t1 <= t0) t1 = t0 + 1;

  const rows: GanttRow[] = [];
  if (mode === 'task') {
    // One lane per task; a retried task's attempts share it, side by side.
    const rowIndex = new Map<string, GanttRow>();
    for (const b of bars) {
      const row = rowIndex.get(b.id);
      if (row) row.bars.push(b);
      else {
        const r = { key: b.id, label: `${shortTail(b.name)} · ${b.id.slice(0, 6)}`, bars: [b] };
        rowIndex.set(b.id, r);
        rows.push(r);
      }
    }
  } else {
    const byWorker = new Map<string, GanttBar[]>();
    for (const b of bars) {
      const w = b.worker ?? '(not started)';
      const list = byWorker.get(w);
      if (list) list.push(b);
      else byWorker.set(w, [b]);
    }
    for (const w of [...byWorker.keys()].sort()) {
      // Greedy interval packing: each sub-lane holds bars that do not overlap (≈ one pool slot).
      const lanes: { end: number; bars: GanttBar[] }[] = [];
      for (const b of byWorker.get(w) ?? []) {
        const s = b.start ?? barStart(b);
        const lane = lanes.find((l) => l.end <= s);
        if (lane) {
          lane.bars.push(b);
          lane.end = b.end;
        } else lanes.push({ end: b.end, bars: [b] });
      }
      lanes.forEach((l, i) => rows.push({ key: `${w}#${i}`, label: i === 0 ? w : '', bars: l.bars }));
    }
  }
  const rowOf = new Map<string, number>();
  rows.forEach((r, i) => r.bars.forEach((b) => {
    if (!rowOf.has(b.id)) rowOf.set(b.id, i);
  }));
  return { t0, t1, rows, rowOf };
}

/** Nice tick spacing for a time axis spanning `span` ms over roughly `count` ticks. */
export function tickStep(span: number, count = 6): number {
  const raw = span / Math.max(1, count);
  const steps = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 15_000, 30_000, 60_000,
    120_000, 300_000, 600_000, 900_000, 1_800_000, 3_600_000, 7_200_000, 21_600_000, 43_200_000, 86_400_000];
  return steps.find((s) => s >= raw) ?? Math.ceil(raw / 86_400_000) * 86_400_000;
}

function shortTail(name: string): string {
  const parts = name.split('.');
  return parts.length > 2 ? parts.slice(-2).join('.') : name;
}
