// The event-source selector (the server's --source NAME=…): shown only when the server has labelled
// sources (or the URL already names one), so a single-source server's pages look as they always did.
// It keeps the choice in the URL's `source` parameter, which every list and aggregate page passes on.
import { useHealth } from '../queries';

type Setter = (u: Record<string, string | string[] | null>) => void;

/** The source the URL scopes the page to, if any. */
export function sourceParam(params: URLSearchParams): string | undefined {
  return params.get('source') || undefined;
}

export function SourceSelect({ params, set }: { params: URLSearchParams; set: Setter }) {
  const health = useHealth();
  const current = params.get('source') ?? '';
  const names = [...new Set([...(health.data?.ingest.sources ?? []).map((s) => s.name), ...(current ? [current] : [])])];
  if (names.length === 0) return null;
  return (
    <select aria-label="Source" value={current} onChange={(e) => set({ source: e.target.value || null })}>
      <option value="">All sources</option>
      {names.map((n) => (
        <option key={n} value={n}>{n}</option>
      ))}
    </select>
  );
}
