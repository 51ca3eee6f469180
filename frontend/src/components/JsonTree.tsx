// A collapsible JSON tree. Everything is rendered as text nodes: HTML in task data never becomes markup.
// stemtrace markers (truncated, repr, redacted) are shown as visible chips.
import { useState } from 'react';
import { markerOf } from '../domain/values';

const AUTO_OPEN_DEPTH = 2;
const MAX_CHILDREN = 200;

export function JsonTree({ value, label }: { value: unknown; label?: string }) {
  return (
    <div className="json" role="tree" aria-label={label}>
      <JsonNode value={value} depth={0} name={null} />
    </div>
  );
}

function JsonNode({ value, depth, name }: { value: unknown; depth: number; name: string | null }) {
  const [open, setOpen] = useState(depth < AUTO_OPEN_DEPTH);
  const [showAll, setShowAll] = useState(false);
  const key = name !== null ? <span className="j-key">{name}: </span> : null;
  const marker = markerOf(value);
  if (marker) {
    return (
      <div className="j-row" role="treeitem">
        {key}
        {marker.kind === 'redacted' && <span className="marker redacted" title="Hidden by stemtrace's redaction">redacted</span>}
        {marker.kind === 'repr' && (
          <>
            <span className="j-str">{marker.repr}</span> <span className="marker repr" title="Not JSON-serialisable: shown as repr()">{marker.type ?? 'repr'}</span>
          </>
        )}
        {marker.kind === 'truncated' && (
          <>
            <span className="j-str">{marker.preview}</span>
            <span className="marker truncated" title="Cut by the capture library's size limit">
              truncated{marker.size !== null ? ` · ${marker.size.toLocaleString()} B` : ''}
            </span>
          </>
        )}
      </div>
    );
  }
  if (value === null || typeof value !== 'object') {
    return (
      <div className="j-row" role="treeitem">
        {key}
        <Scalar value={value} />
      </div>
    );
  }
  const entries: [string, unknown][] = Array.isArray(value)
    ? value.map((v, i) => [String(i), v])
    : Object.entries(value as Record<string, unknown>);
  const [openB, closeB] = Array.isArray(value) ? ['[', ']'] : ['{', '}'];
  const shown = showAll ? entries : entries.slice(0, MAX_CHILDREN);
  return (
    <div className="j-row" role="treeitem" aria-expanded={open}>
      <button type="button" className="j-toggle" onClick={() => setOpen((o) => !o)} aria-label={open ? 'Collapse' : 'Expand'}>
        {open ? '▾' : '▸'}
      </button>
      {key}
      <span className="j-punct">{openB}</span>
      {!open && (
        <button type="button" className="j-summary" onClick={() => setOpen(true)}>
          {entries.length} {Array.isArray(value) ? 'items' : 'keys'}
        </button>
      )}
      {open && (
        <div className="j-children" role="group">
          {shown.map(([k, v]) => (
            <JsonNode key={k} value={v} depth={depth + 1} name={Array.isArray(value) ? null : k} />
          ))}
          {shown.length < entries.length && (
            <button type="button" className="btn small" onClick={() => setShowAll(true)}>
              Show {entries.length - shown.length} more
            </button>
          )}
        </div>
      )}
      <span className="j-punct">{closeB}</span>
    </div>
  );
}

function Scalar({ value }: { value: unknown }) {
  if (value === null || value === undefined) return <span className="j-null">null</span>;
  if (typeof value === 'string') return <span className="j-str">{JSON.stringify(value)}</span>;
  if (typeof value === 'number') return <span className="j-num">{String(value)}</span>;
  if (typeof value === 'boolean') return <span className="j-bool">{String(value)}</span>;
  return <span>{String(value)}</span>;
}
