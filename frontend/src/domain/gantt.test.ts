import { describe, expect, it } from 'vitest';
import { attemptBars, ganttLayout, tickStep, toBar } from './gantt';
import { chordWorkflow, node } from './fixtures';

describe('gantt', () => {
  it('splits a bar into queue wait and run', () => {
    const b = toBar(node('a', { sent_at: '2026-01-01T00:00:00Z', started_at: '2026-01-01T00:00:02Z', finished_at: '2026-01-01T00:00:05Z' }), 0);
    expect(b).toMatchObject({ queued: Date.parse('2026-01-01T00:00:00Z'), start: Date.parse('2026-01-01T00:00:02Z'), running: false });
    expect(b!.end - b!.start!).toBe(3000);
  });
  it('skips tasks that never got queued and extends running ones to now', () => {
    expect(toBar(node('p', { state: 'PLANNED' }), 0)).toBeNull();
    const now = Date.parse('2026-01-01T00:01:00Z');
    const b = toBar(node('r', { state: 'STARTED', started_at: '2026-01-01T00:00:00Z' }), now);
    expect(b).toMatchObject({ end: now, running: true, queued: null });
  });
  it('one lane per task, ordered by start', () => {
    const g = ganttLayout(chordWorkflow(5).nodes, 'task', 0);
    expect(g.rows.map((r) => r.key)).toEqual(['root', 'item-0', 'item-1', 'item-2', 'item-3', 'item-4']);
    expect(g.t0).toBe(Date.parse('2026-01-01T00:00:00Z'));
    expect(g.rowOf.get('item-2')).toBe(3);
  });
  it('packs worker lanes so bars in one lane never overlap', () => {
    const g = ganttLayout(chordWorkflow(40).nodes, 'worker', 0);
    for (const r of g.rows) {
      for (let i = 1; i < r.bars.length; i++) expect(r.bars[i]!.start!).toBeGreaterThanOrEqual(r.bars[i - 1]!.end);
    }
    expect(g.rows.filter((r) => r.label !== '').map((r) => r.label)).toEqual(['w0@host', 'w1@host', 'w2@host', 'w3@host']);
    expect([...g.rowOf.keys()]).toHaveLength(41);
  });
  it('picks readable tick steps', () => {
    expect(tickStep(60_000)).toBe(10_000);
    expect(tickStep(3)).toBe(1);
  });

  const t = (s: number) => new Date(Date.parse('2026-01-01T00:00:00Z') + s * 1000).toISOString();
  const ms = (s: number) => Date.parse(t(s));
  const span = (number: number, state: string, worker: string | null, r: number | null, s: number | null, f: number | null) => ({
    number, state: state as 'SUCCESS', worker, received_at: r === null ? null : t(r), started_at: s === null ? null : t(s),
    finished_at: f === null ? null : t(f),
  });

  it('draws one bar per attempt of a retried task, in its lane and in each attempt worker\'s lane', () => {
    const n = node('r', {
      state: 'SUCCESS', attempts: 2, sent_at: t(0), received_at: t(4), started_at: t(5), finished_at: t(6),
      attempt_spans: [span(1, 'RETRY', 'w1@h', 1, 2, 3), span(2, 'SUCCESS', 'w2@h', 4, 5, 6)],
    });
    const bars = attemptBars(n, n.attempt_spans!, 0);
    expect(bars.map((b) => [b.attempt, b.state, b.worker, b.start! - b.queued!, b.end - b.start!, b.running])).toEqual([
      [1, 'RETRY', 'w1@h', 2000, 1000, false], // waited from when it was sent
      [2, 'SUCCESS', 'w2@h', 2000, 1000, false], // the retry was queued when attempt 1 ended
    ]);
    const byTask = ganttLayout([n], 'task', 0);
    expect(byTask.rows).toHaveLength(1);
    expect(byTask.rows[0]!.bars.map((b) => b.attempt)).toEqual([1, 2]);
    expect(byTask.t0).toBe(ms(0));
    expect(byTask.t1).toBe(ms(6));
    const byWorker = ganttLayout([n], 'worker', 0);
    expect(byWorker.rows.map((r) => r.label)).toEqual(['w1@h', 'w2@h']);
    expect(byWorker.rowOf.get('r')).toBe(0);
  });

  it('gives every retried task its attempts, however many there are', () => {
    const nodes = Array.from({ length: 300 }, (_, i) => node(`t${i}`, {
      attempts: 3, sent_at: t(i), started_at: t(i + 5), finished_at: t(i + 6),
      attempt_spans: [span(1, 'RETRY', 'w@h', i, i + 1, i + 2), span(2, 'RETRY', 'w@h', i + 3, i + 3, i + 4), span(3, 'SUCCESS', 'w@h', i + 5, i + 5, i + 6)],
    }));
    const g = ganttLayout(nodes, 'task', 0);
    expect(g.rows).toHaveLength(300);
    expect(g.rows.every((r) => r.bars.map((b) => b.attempt).join() === '1,2,3')).toBe(true);
    // By worker, the attempts pack into sub-lanes that never overlap.
    const w = ganttLayout(nodes, 'worker', 0);
    expect(w.rows.reduce((k, r) => k + r.bars.length, 0)).toBe(900);
    for (const r of w.rows) {
      for (let i = 1; i < r.bars.length; i++) expect(r.bars[i]!.start!).toBeGreaterThanOrEqual(r.bars[i - 1]!.end);
    }
  });

  it('keeps one bar for a single attempt, including payloads without attempt_spans', () => {
    const once = node('a', { sent_at: t(0), started_at: t(1), finished_at: t(2) });
    expect(ganttLayout([once], 'task', 0).rows[0]!.bars.map((b) => b.attempt)).toEqual([null]);
    const old = { ...once, id: 'b' } as Partial<typeof once>;
    delete old.attempt_spans; // an older server
    expect(ganttLayout([old as typeof once], 'task', 0).rows[0]!.bars).toHaveLength(1);
    const one = node('c', { sent_at: t(0), started_at: t(1), finished_at: t(2), attempt_spans: [span(1, 'SUCCESS', 'w', 0, 1, 2)] });
    expect(ganttLayout([one], 'task', 0).rows[0]!.bars.map((b) => b.attempt)).toEqual([null]);
  });

  it('ends a lost attempt where the redelivery begins and runs the last one to now', () => {
    const now = ms(30);
    const n = node('l', {
      state: 'STARTED', attempts: 3, sent_at: t(0),
      attempt_spans: [
        span(1, 'LOST', 'w1@h', 1, 2, null), // its worker died: no finish time
        span(2, 'STARTED', 'w2@h', 10, 12, null), // running now
        span(3, 'PENDING', null, null, null, null), // not received yet: nothing to draw
      ],
    });
    const bars = attemptBars(n, n.attempt_spans!, now);
    expect(bars.map((b) => [b.attempt, b.end, b.running, b.queued])).toEqual([
      [1, ms(10), false, ms(0)],
      [2, ms(30), true, ms(10)], // queued when attempt 1 was given up on
    ]);
  });

  it('shows a retry still waiting in the queue as queue wait up to now', () => {
    const n = node('q', { state: 'RETRY', attempts: 2, sent_at: t(0), attempt_spans: [span(1, 'RETRY', 'w', 1, 2, 3), span(2, 'PENDING', null, null, null, null)] });
    const [, waiting] = attemptBars(n, n.attempt_spans!, ms(20));
    expect(waiting).toMatchObject({ attempt: 2, queued: ms(3), start: null, end: ms(20), running: true, worker: null });
  });
});
