// Arguments shown as a call — `resize_image(4527, 1280)` — rather than the raw `[[4527,1280],{}]` the
// API's one-line preview holds. The preview is either JSON `[args, kwargs]` cut at 120 characters, or the
// worker's `args_repr kwargs_repr` (Python reprs) when the library captured reprs.

/** The text between the call's parentheses: `4527, 1280, mode='fast'`. */
export function argDigest(preview: string | null | undefined, max = 60): string {
  if (!preview) return '';
  const inner = callInner(preview.trim());
  return inner.length > max ? `${inner.slice(0, max - 1)}…` : inner;
}

/** `resize_image(4527, 1280)`: the task's short name and its arguments. */
export function callText(name: string | null | undefined, preview: string | null | undefined, max = 120): string {
  const fn = shortTaskName(name ?? '?');
  if (!preview) return `${fn}()`;
  return `${fn}(${argDigest(preview, max)})`;
}

/** `proj.tasks.resize_image` → `resize_image`. */
export function shortTaskName(name: string): string {
  const i = name.lastIndexOf('.');
  return i >= 0 && i < name.length - 1 ? name.slice(i + 1) : name;
}

function callInner(p: string): string {
  if (p.startsWith('[')) {
    try {
      const parsed = JSON.parse(p) as unknown;
      if (Array.isArray(parsed) && parsed.length === 2 && Array.isArray(parsed[0])) {
        const [args, kwargs] = parsed as [unknown[], unknown];
        const parts = args.map(literal);
        if (kwargs && typeof kwargs === 'object' && !Array.isArray(kwargs)) {
          for (const [k, v] of Object.entries(kwargs)) parts.push(`${k}=${literal(v)}`);
        }
        return parts.join(', ');
      }
    } catch {
      // Cut at the preview's length: show what there is, marked as cut.
      const body = p.startsWith('[[') ? p.slice(2) : p.slice(1);
      return `${body.replace(/,/g, ', ')}…`;
    }
  }
  // Python reprs: "(4527, 1280) {'mode': 'fast'}".
  const m = /^\((.*?)\)\s*(\{.*\})?$/s.exec(p);
  if (m) {
    const args = (m[1] ?? '').replace(/,\s*$/, '');
    const kw = (m[2] ?? '').slice(1, -1).trim();
    const kwargs = kw ? kw.split(/,\s*(?=['"])/).map((pair) => pair.replace(/^['"]([^'"]+)['"]\s*:\s*/, '$1=')) : [];
    return [args, ...kwargs].filter(Boolean).join(', ');
  }
  return p;
}

function literal(v: unknown): string {
  if (typeof v === 'string') return `'${v}'`;
  if (v === null) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'object') {
    const m = v as Record<string, unknown>;
    if (typeof m.__stemtrace_repr__ === 'string') return m.__stemtrace_repr__;
    if (m.__stemtrace_truncated__ === true) return '‹truncated›';
    return JSON.stringify(v);
  }
  return String(v);
}
