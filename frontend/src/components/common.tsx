// Small shared pieces: state badges, times, durations, errors, empty states, copy buttons.
import { useState, type ReactNode } from 'react';
import { ApiError } from '../api/client';
import { usePrefs } from '../app/prefs';
import { stateClass } from '../domain/states';
import { formatDuration, formatTime } from '../domain/time';

export function StateBadge({ state, title }: { state: string; title?: string }) {
  return (
    <span className={`badge st-${stateClass(state)}`} title={title ?? state} data-state={state}>
      {state}
    </span>
  );
}

export function Time({ ts }: { ts: string | null | undefined }) {
  const { timeMode } = usePrefs();
  if (!ts) return <span className="muted">—</span>;
  return (
    <time dateTime={ts} title={ts}>
      {formatTime(ts, timeMode)}
    </time>
  );
}

export function Duration({ ms }: { ms: number | null | undefined }) {
  return <span className="num">{formatDuration(ms)}</span>;
}

export function ErrorBanner({ error, what }: { error: unknown; what?: string }) {
  if (!error) return null;
  const message = error instanceof Error ? error.message : String(error);
  const status = error instanceof ApiError && error.status ? ` (HTTP ${error.status})` : '';
  return (
    <div className="error-banner" role="alert">
      <strong>{what ? `Could not load ${what}` : 'Request failed'}{status}:</strong> {message}
    </div>
  );
}

export function Empty({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="empty">
      <p className="empty-title">{title}</p>
      {children && <div className="empty-body">{children}</div>}
    </div>
  );
}

export function NoEventsHint() {
  return (
    <>
      Is <code>stemtrace.init(app)</code> called where your Celery app is defined, and does the server read the same
      events URL as the workers? Start a worker and send a task, it shows up here within a second.
    </>
  );
}

export function Loading({ what }: { what: string }) {
  return <div className="loading" aria-busy="true">Loading {what}…</div>;
}

export async function copyText(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // Clipboard API unavailable (plain http on a remote host): fall back to a hidden textarea.
    const ta = document.createElement('textarea');
    ta.value = text;
    document.body.appendChild(ta);
    ta.select();
    const ok = document.execCommand('copy');
    ta.remove();
    return ok;
  }
}

export function CopyButton({ text, label = 'Copy' }: { text: string; label?: string }) {
  const [done, setDone] = useState(false);
  return (
    <button
      type="button"
      className="btn small"
      aria-label={`${label} ${text}`}
      onClick={() => {
        void copyText(text).then((ok) => {
          setDone(ok);
          window.setTimeout(() => setDone(false), 1200);
        });
      }}
    >
      {done ? 'Copied' : label}
    </button>
  );
}

export function CountsBar({ counts, total }: { counts: Record<string, number>; total?: number }) {
  const sum = total ?? Object.values(counts).reduce((a, b) => a + b, 0);
  if (!sum) return null;
  return (
    <span className="countsbar" title={Object.entries(counts).map(([s, n]) => `${s}: ${n}`).join(', ')}>
      {Object.entries(counts)
        .filter(([, n]) => n > 0)
        .map(([s, n]) => (
          <span key={s} className={`seg bg-${stateClass(s)}`} style={{ width: `${(100 * n) / sum}%` }} />
        ))}
    </span>
  );
}
