// "Scheduled for T": a task waiting for its ETA/countdown, or a workflow waiting only on such tasks.
import { usePrefs } from '../app/prefs';
import { formatTime } from '../domain/time';
import { isOverdue } from '../domain/schedule';

/** "scheduled for 2026-12-07 09:00:00.000" (or "scheduled in 5m" in relative time), "overdue" once past. */
export function ScheduledFor({ eta, capital = false, compact = false }: { eta: string; capital?: boolean; compact?: boolean }) {
  const { timeMode } = usePrefs();
  const overdue = isOverdue(eta);
  const when = compact ? compactTime(formatTime(eta, timeMode), formatTime(new Date().toISOString(), timeMode)) : formatTime(eta, timeMode);
  const lead = timeMode === 'relative' ? (compact ? '' : 'scheduled') : compact ? 'for' : 'scheduled for';
  return (
    <span className={`scheduled${overdue ? ' overdue' : ''}`} data-eta={eta} title={`ETA ${eta}${overdue ? ': past due and not started' : ''}`}>
      {lead && `${capital ? lead.charAt(0).toUpperCase() + lead.slice(1) : lead} `}<time dateTime={eta}>{when}</time>
      {overdue && ' (overdue)'}
    </span>
  );
}

/** A graph node's room: "2026-12-07 09:00:00.000" as "09:00:00" today, else "12-08 09:00" (the full time
 * is in the title); `today` is the current time formatted alike. */
export function compactTime(text: string, today: string): string {
  const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d)(:\d\d)\.\d{3}(Z?)$/.exec(text);
  if (!m) return text;
  const [, date = '', hm = '', sec = '', z = ''] = m;
  return today.startsWith(date) ? `${hm}${sec}${z}` : `${date.slice(5)} ${hm}${z}`;
}

/** The badge shown in place of a waiting state (RECEIVED, PENDING, RETRY; a workflow's RUNNING). */
export function ScheduledBadge({ state, eta }: { state: string; eta: string }) {
  return (
    <span className="badge st-scheduled" data-state={state} title={`${state}: scheduled for ${eta}`}>
      SCHEDULED
    </span>
  );
}
