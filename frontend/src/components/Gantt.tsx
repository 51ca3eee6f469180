// Gantt timeline of a workflow: one bar per task, or per attempt of a retried task (queue wait, then
// run), lanes by task or worker, rows virtualized so 10,000 tasks stay smooth.
import { useVirtualizer } from '@tanstack/react-virtual';
import { useEffect, useLayoutEffect, useRef, useState } from 'react';
import { tickStep, type GanttLayout, type LaneMode } from '../domain/gantt';
import { stateClass } from '../domain/states';
import { formatDuration } from '../domain/time';

const ROW = 20;
const LABEL_W = 200;

interface Props {
  layout: GanttLayout;
  mode: LaneMode;
  selected: string | null;
  onSelect: (id: string) => void;
}

export function Gantt({ layout, mode, selected, onSelect }: Props) {
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

  const span = layout.t1 - layout.t0;
  const x = (t: number) => ((t - layout.t0) / span) * width;
  const step = tickStep(span, Math.max(2, Math.floor(width / 110)));
  const ticks: number[] = [];
  for (let t = 0; t <= span && ticks.length < 60; t += step) ticks.push(t);

  if (!layout.rows.length) return <p className="muted pad">No task of this workflow has been sent yet.</p>;
  return (
    <div className="gantt" role="figure" aria-label="Timeline">
      <div className="gantt-axis" style={{ paddingLeft: LABEL_W }}>
        {ticks.map((t) => (
          <span key={t} className="tick" style={{ left: LABEL_W + (t / span) * width }}>+{formatDuration(t, t >= 60_000)}</span>
        ))}
      </div>
      <div className="gantt-body" ref={scrollRef}>
        <div style={{ height: virt.getTotalSize(), position: 'relative' }}>
          {virt.getVirtualItems().map((vi) => {
            const row = layout.rows[vi.index];
            if (!row) return null;
            return (
              <div key={row.key} className={`gantt-row${vi.index === selectedRow ? ' selected' : ''}`} style={{ transform: `translateY(${vi.start}px)`, height: ROW }}>
                <div className="gantt-label" style={{ width: LABEL_W }} title={row.label}>{row.label}</div>
                <div className="gantt-lane" style={{ width }}>
                  {row.bars.map((b) => {
                    const runStart = b.start ?? b.end;
                    const qStart = mode === 'task' && b.queued !== null ? b.queued : runStart;
                    const which = b.attempt !== null
                      ? ` · attempt ${b.attempt} of ${b.attempts}${b.worker ? ` on ${b.worker}` : ''}`
                      : b.attempts > 1 ? ` · ${b.attempts} attempts` : '';
                    const tip = `${b.name} · ${b.state}${which}\n` +
                      `queue wait ${formatDuration(b.start !== null && b.queued !== null ? b.start - b.queued : null)} · ` +
                      `run ${formatDuration(b.start !== null ? b.end - b.start : null)}`;
                    return (
                      <button
                        key={`${b.id}#${b.attempt ?? 0}`}
                        type="button"
                        className={`gantt-bar${b.id === selected ? ' selected' : ''}${b.running ? ' running' : ''}`}
                        style={{ left: x(qStart), width: Math.max(2, x(b.end) - x(qStart)) }}
                        title={tip}
                        data-task-id={b.id}
                        data-attempt={b.attempt ?? undefined}
                        onClick={() => onSelect(b.id)}
                      >
                        {runStart > qStart && <span className="g-wait" style={{ width: x(runStart) - x(qStart) }} />}
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
