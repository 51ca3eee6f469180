// A small throughput chart (succeeded and failed per bucket) drawn with uPlot on a canvas.
import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { parseTs } from '../domain/time';

interface Point {
  t: string;
  succeeded: number;
  failed: number;
}

function cssVar(name: string, fallback: string): string {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

export function Sparkline({ series, width = 180, height = 34 }: { series: Point[]; width?: number; height?: number }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = ref.current;
    if (!el || series.length < 2) return;
    const xs = series.map((p) => (parseTs(p.t) ?? 0) / 1000);
    const ok = cssVar('--st-success', '#2f9e44');
    const bad = cssVar('--st-failure', '#e03131');
    const plot = new uPlot(
      {
        width, height, legend: { show: false }, cursor: { show: false }, select: { show: false, left: 0, top: 0, width: 0, height: 0 },
        axes: [{ show: false }, { show: false }],
        scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
        series: [
          {},
          { stroke: ok, fill: ok + '33', width: 1.5, points: { show: false } },
          { stroke: bad, width: 1.5, points: { show: false } },
        ],
      },
      [xs, series.map((p) => p.succeeded), series.map((p) => p.failed)],
      el,
    );
    return () => plot.destroy();
  }, [series, width, height]);
  if (series.length < 2) return <span className="muted small">not enough data</span>;
  const total = series.reduce((a, p) => a + p.succeeded + p.failed, 0);
  return <div ref={ref} className="spark" role="img" aria-label={`Throughput: ${total} tasks over ${series.length} buckets`} />;
}
