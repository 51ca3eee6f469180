// Gantt timeline of a workflow: one bar per task, or per attempt of a retried task (queue wait, then
// run), lanes by task or worker, rows virtualized so 10,000 tasks stay smooth.
import { useVirtualizer } from '@tanstack/react-virtual';
import { useEffect, useLayoutEffect, useRef, useState } from 'react';
import { tickStep, type GanttBar, type GanttLayout, type LaneMode } from '../domain/gantt';
import { stateClass } from '../domain/states';
import { formatDuration } from '../domain/time';
import { phasesText, type Phases } from '../domain/waiting';
import { shortTaskName } from '../domain/args';

/** The bar's phases by the same definition as the task page (domain/waiting.ts). */
export function barPhases(b: GanttBar): Phases {
  const span = (a: number | null, z: number | null) => (a === null || z === null ? null : Math.max(0, z - a));
  return {
    queued: b.received !== null && b.queued !== null && b.queued <= b.received ? span(b.queued, b.received) : null,
    reserved: span(b.received, b.start),
    run: b.running ? null : span(b.start, b.end),
  };
}

const ROW = 20;
const LABEL_W = 200;

interface Props {
  layout: GanttLayout;
  mode: LaneMode;
  selected: string | null;
  onSelect: (id: string) => void;
  /** Argument digest per task id, shown in 'task' lanes after the name. */
  digests?: ReadonlyMap<string, string>;
}

export function Gantt({ layout, mode, selected, onSelect, digests }: Props) {
  const scrollRef = useRef<HTMLDivElement>(null);
  const [width, setWidth] = useState(800);
  useLayoutEffect(() => {
    const el = scrollRef.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setWidth(Math.max(200, el.clientWidth - LABEL_W - 16)));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  const virt = useVirtualizer({ count: layout.rows.length, getScrollElement: () => scrollRef.current, estimateSize: () => ROW, overscan: 10 });
  const selectedRow = selected ? layout.rowOf.get(selected) : undefined;
  useEffect(() => {
    if (selectedRow !== undefined) virt.scrollToIndex(selectedRow, { align: 'center' });
  }, [selectedRow, virt]);

  const label = (row: GanttLayout['rows'][number]) => {
    const d = mode === 'task' ? digests?.get(row.key) : undefined;
    const name = row.bars[0]?.name;
    return d && name ? `${shortTaskName(name)}(${d}) · ${row.key.slice(0, 6)}` : row.label;
  };
  const span = layout.t1 - layout.t0;
  const x = (t: number) => ((t - layout.t0) / span) * width;
  const step = tickStep(span, Math.max(2, Math.floor(width / 110)));
  const ticks: number[] = [];
  for (let t = 0; t <= span && ticks.length < 60; t += step) ticks.push(t);

  // Arrow keys move between bars (up/down: rows, left/right: attempts in a row); Enter opens (a button).
  const onKeyDown = (e: React.KeyboardEvent) => {
    const bar = (e.target as HTMLElement).closest<HTMLElement>('.gantt-bar');
    const rowEl = bar?.closest<HTMLElement>('[data-row]');
    if (!bar || !rowEl) return;
    const row = Number(rowEl.dataset.row);
    const inRow = [...rowEl.querySelectorAll<HTMLElement>('.gantt-bar')];
    const at = inRow.indexOf(bar);
    let target: { row: number; index: number } | null = null;
    if (e.key === 'ArrowDown' && row + 1 < layout.rows.length) target = { row: row + 1, index: 0 };
    else if (e.key === 'ArrowUp' && row > 0) target = { row: row - 1, index: 0 };
    else if (e.key === 'ArrowRight' && at + 1 < inRow.length) target = { row, index: at + 1 };
    else if (e.key === 'ArrowLeft' && at > 0) target = { row, index: at - 1 };
    if (!target) return;
    e.preventDefault();
    const t = target;
    virt.scrollToIndex(t.row);
    const focus = (tries: number) => {
      const el = scrollRef.current?.querySelectorAll<HTMLElement>(`[data-row="${t.row}"] .gantt-bar`)[t.index];
      if (el) el.focus();
      else if (tries > 0) window.requestAnimationFrame(() => focus(tries - 1));
    };
    focus(5);
  };

  if (!layout.rows.length) return <p className="muted pad">No task of this workflow has been sent yet.</p>;
  return (
    <div className="gantt" role="figure" aria-label="Timeline">
      <div className="gantt-axis" style={{ paddingLeft: LABEL_W }}>
        {ticks.map((t) => (
          <span key={t} className="tick" style={{ left: LABEL_W + (t / span) * width }}>+{formatDuration(t, t >= 60_000)}</span>
        ))}
      </div>
      <div className="gantt-body" ref={scrollRef} onKeyDown={onKeyDown}>
        <div style={{ height: virt.getTotalSize(), position: 'relative' }}>
          {virt.getVirtualItems().map((vi) => {
            const row = layout.rows[vi.index];
            if (!row) return null;
            return (
              <div key={row.key} data-row={vi.index} className={`gantt-row${vi.index === selectedRow ? ' selected' : ''}`} style={{ transform: `translateY(${vi.start}px)`, height: ROW }}>
                <div className="gantt-label" style={{ width: LABEL_W }} title={label(row)}>{label(row)}</div>
                <div className="gantt-lane" style={{ width }}>
                  {row.bars.map((b) => {
                    const runStart = b.start ?? b.end;
                    const qStart = mode === 'task' && b.queued !== null ? b.queued : runStart;
                    const which = b.attempt !== null
                      ? ` · attempt ${b.attempt} of ${b.attempts}${b.worker ? ` on ${b.worker}` : ''}`
                      : b.attempts > 1 ? ` · ${b.attempts} attempts` : '';
                    const phases = barPhases(b);
                    const tip = `${b.name} · ${b.state}${which}\n${phasesText(phases, (ms) => formatDuration(ms))}`;
                    const recv = mode === 'task' && b.received !== null && b.received > qStart && b.received < runStart ? b.received : qStart;
                    return (
                      <button
                        key={`${b.id}#${b.attempt ?? 0}`}
                        type="button"
                        className={`gantt-bar${b.id === selected ? ' selected' : ''}${b.running ? ' running' : ''}`}
                        style={{ left: x(qStart), width: Math.max(2, x(b.end) - x(qStart)) }}
                        title={tip}
                        aria-label={tip.replace('\n', ' · ')}
                        data-task-id={b.id}
                        data-attempt={b.attempt ?? undefined}
                        onClick={() => onSelect(b.id)}
                      >
                        {recv > qStart && <span className="g-wait" style={{ width: x(recv) - x(qStart) }} />}
                        {runStart > recv && <span className="g-reserved" style={{ left: x(recv) - x(qStart), width: x(runStart) - x(recv) }} />}
                        {b.start !== null && <span className={`g-run bg-${stateClass(b.state)}`} style={{ left: x(runStart) - x(qStart), width: Math.max(2, x(b.end) - x(runStart)) }} />}
                      </button>
                    );
                  })}
                </div>
              </div>
            );
          })}
        </div>
      </div>
    </div>
  );
}
