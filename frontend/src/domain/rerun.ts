// "Copy as code" and "Copy as CLI": the call that would send a task again, for a person to run.
// stemtrace stays read-only — it never sends anything to Celery — so re-running is a copy-paste,
// and the copy says plainly when it is not faithful (a value was cut, redacted or shown as a repr).

const TRUNCATED_KEY = '__stemtrace_truncated__';
const REPR_KEY = '__stemtrace_repr__';
const REDACTED = '[redacted]';

export interface RerunSource {
  name: string | null | undefined;
  args?: unknown;
  kwargs?: unknown;
  args_repr?: string | null;
  kwargs_repr?: string | null;
  queue?: string | null;
  routing_key?: string | null;
}

export interface RerunText {
  text: string;
  /** Why the copy would not send the same values, or null when it would. */
  unsafe: string | null;
}

/** `app.send_task("proj.resize", args=[4527, 1280], kwargs={"fmt": "png"}, queue="images")`. */
export function asCode(task: RerunSource): RerunText {
  const parts = [pyString(task.name ?? '?')];
  const args = Array.isArray(task.args) ? task.args : [];
  const kwargs = isObject(task.kwargs) ? task.kwargs : {};
  if (args.length) parts.push(`args=${pyLiteral(args)}`);
  if (Object.keys(kwargs).length) parts.push(`kwargs=${pyLiteral(kwargs)}`);
  if (task.queue) parts.push(`queue=${pyString(task.queue)}`);
  if (task.routing_key && task.routing_key !== task.queue) parts.push(`routing_key=${pyString(task.routing_key)}`);
  return { text: `app.send_task(${parts.join(', ')})`, unsafe: unsafeReason(task) };
}

/** `celery -A proj call proj.resize --args='[4527, 1280]' --queue=images` (JSON, as `celery call` reads it). */
export function asCli(task: RerunSource): RerunText {
  const name = task.name ?? '?';
  const app = name.includes('.') ? name.slice(0, name.indexOf('.')) : 'proj';
  const parts = ['celery', '-A', shellQuote(app), 'call', shellQuote(name)];
  const args = Array.isArray(task.args) ? task.args : [];
  const kwargs = isObject(task.kwargs) ? task.kwargs : {};
  if (args.length) parts.push(`--args=${shellQuote(JSON.stringify(args))}`);
  if (Object.keys(kwargs).length) parts.push(`--kwargs=${shellQuote(JSON.stringify(kwargs))}`);
  if (task.queue) parts.push(`--queue=${shellQuote(task.queue)}`);
  if (task.routing_key && task.routing_key !== task.queue) parts.push(`--routing-key=${shellQuote(task.routing_key)}`);
  return { text: parts.join(' '), unsafe: unsafeReason(task) };
}

/** Why a copy would differ from what the task was sent with; null when every value is whole. */
export function unsafeReason(task: RerunSource): string | null {
  const reasons = new Set<string>();
  const noArgs = task.args === null || task.args === undefined;
  const noKwargs = task.kwargs === null || task.kwargs === undefined;
  if ((noArgs && task.args_repr) || (noKwargs && task.kwargs_repr)) {
    reasons.add('the arguments were captured only as a repr');
  }
  walk(task.args, reasons);
  walk(task.kwargs, reasons);
  return reasons.size ? `Unsafe to run as is: ${[...reasons].join('; ')}.` : null;
}

function walk(value: unknown, reasons: Set<string>): void {
  if (typeof value === 'string') {
    if (value.includes(REDACTED)) reasons.add('some values were redacted');
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) walk(v, reasons);
    return;
  }
  if (isObject(value)) {
    if (value[TRUNCATED_KEY] === true) reasons.add('some values were cut to a preview');
    if (REPR_KEY in value) reasons.add('some values have no JSON form and are shown as a repr');
    for (const v of Object.values(value)) walk(v, reasons);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A JSON value as the Python literal that means the same. */
export function pyLiteral(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : `float(${pyString(String(value))})`;
  if (typeof value === 'string') return pyString(value);
  if (Array.isArray(value)) return `[${value.map(pyLiteral).join(', ')}]`;
  if (isObject(value)) {
    return `{${Object.entries(value).map(([k, v]) => `${pyString(k)}: ${pyLiteral(v)}`).join(', ')}}`;
  }
  return pyString(String(value));
}

/** A Python string literal: JSON's escaping is valid Python for every string JSON can hold. */
function pyString(text: string): string {
  return JSON.stringify(text);
}

/** One shell word: single quotes, each embedded quote closed, escaped and reopened. */
export function shellQuote(text: string): string {
  return /^[A-Za-z0-9_.,:/=@%+-]+$/.test(text) ? text : `'${text.replace(/'/g, `'"'"'`)}'`;
}
