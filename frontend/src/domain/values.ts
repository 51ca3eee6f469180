// Captured argument/result values may carry stemtrace markers; classify them so the UI shows them visibly.
export type Marker =
  | { kind: 'truncated'; preview: string; size: number | null }
  | { kind: 'repr'; repr: string; type: string | null }
  | { kind: 'redacted' };

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function markerOf(value: unknown): Marker | null {
  if (value === '[redacted]') return { kind: 'redacted' };
  if (!isObj(value)) return null;
  if (value.__stemtrace_truncated__ === true) {
    return {
      kind: 'truncated',
      preview: typeof value.preview === 'string' ? value.preview : '',
      size: typeof value.size === 'number' ? value.size : null,
    };
  }
  if (typeof value.__stemtrace_repr__ === 'string') {
    return { kind: 'repr', repr: value.__stemtrace_repr__, type: typeof value.type === 'string' ? value.type : null };
  }
  return null;
}

/** A one-line preview of a value, for table cells; markers shown as ‹…›. */
export function previewValue(value: unknown, max = 120): string {
  const out = previewInner(value, max);
  return out.length > max ? out.slice(0, max - 1) + '…' : out;
}

function previewInner(value: unknown, budget: number): string {
  const m = markerOf(value);
  if (m?.kind === 'redacted') return '‹redacted›';
  if (m?.kind === 'truncated') return `${m.preview}‹truncated${m.size !== null ? ` ${m.size} B` : ''}›`;
  if (m?.kind === 'repr') return m.repr;
  if (value === null || value === undefined) return 'None';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value !== 'object') return String(value);
  if (budget <= 0) return '…';
  if (Array.isArray(value)) {
    const parts: string[] = [];
    let used = 0;
    for (const v of value) {
      const p = previewInner(v, budget - used);
      parts.push(p);
      used += p.length + 2;
      if (used > budget) break;
    }
    return `[${parts.join(', ')}]`;
  }
  const parts: string[] = [];
  let used = 0;
  for (const [k, v] of Object.entries(value)) {
    const p = `${k}: ${previewInner(v, budget - used)}`;
    parts.push(p);
    used += p.length + 2;
    if (used > budget) break;
  }
  return `{${parts.join(', ')}}`;
}

const UUID = /\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/i;
/** The task id inside pasted text (a bare id, a URL or a log line), if any. */
export function findTaskId(text: string): string | null {
  const m = UUID.exec(text.trim());
  return m ? m[0].toLowerCase() : null;
}

/** The class alone — `stemtrace.demo.errors.PaymentDeclined` → `PaymentDeclined` — so a narrow cell
 * shows what failed; the full path goes in the element's title (two modules' `ValueError`s differ). */
export function exceptionName(type: string | null | undefined): string {
  if (!type) return '';
  const i = type.lastIndexOf('.');
  return i >= 0 && i < type.length - 1 ? type.slice(i + 1) : type;
}
