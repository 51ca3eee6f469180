// Time-range filter: presets (`range=1h`) or a custom window (`range=custom&since=…&until=…`), in the URL.
import { RANGE_PRESETS, rangeToSince } from '../domain/time';

type Setter = (u: Record<string, string | string[] | null>) => void;

/** The `since`/`until` to send to the API for the URL's range. */
export function rangeFilter(params: URLSearchParams): { since?: string; until?: string } {
  const range = params.get('range');
  if (range === 'custom') {
    return { since: params.get('since') ?? undefined, until: params.get('until') ?? undefined };
  }
  return { since: rangeToSince(range) };
}

const pad = (n: number) => String(n).padStart(2, '0');
function toLocalInput(iso: string | null): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
function fromLocalInput(v: string): string | null {
  if (!v) return null;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

export function TimeRange({ params, set }: { params: URLSearchParams; set: Setter }) {
  const range = params.get('range') ?? '';
  return (
    <>
      <select
        aria-label="Time range"
        value={range}
        onChange={(e) => set({ range: e.target.value, ...(e.target.value !== 'custom' ? { since: null, until: null } : {}) })}
      >
        <option value="">All time</option>
        {Object.keys(RANGE_PRESETS).map((r) => <option key={r} value={r}>Last {r}</option>)}
        <option value="custom">Custom…</option>
      </select>
      {range === 'custom' && (
        <>
          <input type="datetime-local" aria-label="From" value={toLocalInput(params.get('since'))} onChange={(e) => set({ since: fromLocalInput(e.target.value) })} />
          <input type="datetime-local" aria-label="Until" value={toLocalInput(params.get('until'))} onChange={(e) => set({ until: fromLocalInput(e.target.value) })} />
        </>
      )}
    </>
  );
}
