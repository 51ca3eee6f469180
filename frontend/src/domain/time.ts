// Time display: local, UTC or relative, always saying which.
export type TimeMode = 'local' | 'utc' | 'relative';

export function parseTs(ts: string | null | undefined): number | null {
  if (!ts) return null;
  const t = Date.parse(ts);
  return Number.isNaN(t) ? null : t;
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

export function formatTime(ts: string | null | undefined, mode: TimeMode, now: number = Date.now()): string {
  const t = parseTs(ts);
  if (t === null) return '—';
  const d = new Date(t);
  if (mode === 'relative') return formatAgo(now - t);
  if (mode === 'utc') {
    return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
      `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}Z`;
  }
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

export function formatAgo(deltaMs: number): string {
  if (deltaMs < 0) return 'in ' + formatDuration(-deltaMs);
  if (deltaMs < 1000) return 'just now';
  return formatDuration(deltaMs, true) + ' ago';
}

/** <1 ms, 12 ms, 1.25 s, 3m 04s, 2h 05m, 3d 4h. `coarse` drops sub-second precision. */
export function formatDuration(ms: number | null | undefined, coarse = false): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  if (ms < 0) ms = 0;
  // Timestamps are whole milliseconds: a fraction of one would claim a precision the figures beside it lack.
  if (!coarse && ms < 1) return ms === 0 ? '0 ms' : '<1 ms';
  if (!coarse && ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return coarse ? `${Math.floor(s)}s` : `${s < 10 ? s.toFixed(2) : s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${pad(Math.floor(s % 60))}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h ${pad(m % 60)}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

export function durationBetween(a: string | null | undefined, b: string | null | undefined): number | null {
  const ta = parseTs(a);
  const tb = parseTs(b);
  return ta === null || tb === null ? null : tb - ta;
}

/** Time-range presets kept in the URL as `range=1h`; converted to `since` when querying. */
export const RANGE_PRESETS: Record<string, number> = {
  '15m': 15 * 60_000, '1h': 3_600_000, '6h': 6 * 3_600_000, '24h': 24 * 3_600_000, '7d': 7 * 24 * 3_600_000,
};
export function rangeToSince(range: string | null, now: number = Date.now()): string | undefined {
  const span = range ? RANGE_PRESETS[range] : undefined;
  return span === undefined ? undefined : new Date(now - span).toISOString();
}
