// "Open trace" / "Open in Sentry" for one attempt: the server fills its --trace-url and
// --sentry-url templates with the attempt's ids (docs: Integrations); nothing shows when the
// server has no template or the attempt lacks an id the template needs.
import type { Attempt } from '../api/types';

type Links = Pick<Attempt, 'trace_url' | 'sentry_url' | 'trace_id' | 'sentry_event_id'>;

// Only web links: the templates are the operator's, but a link is never a script.
function web(url: string | null | undefined): string | null {
  return url && /^https?:\/\//i.test(url) ? url : null;
}

export function AttemptLinks({ attempt }: { attempt: Links }) {
  const trace = web(attempt.trace_url);
  const sentry = web(attempt.sentry_url);
  if (!trace && !sentry) return null;
  return (
    <span className="attempt-links">
      {trace && (
        <a href={trace} target="_blank" rel="noopener noreferrer" title={attempt.trace_id ?? undefined}>
          Open trace
        </a>
      )}
      {sentry && (
        <a href={sentry} target="_blank" rel="noopener noreferrer" title={attempt.sentry_event_id ?? undefined}>
          Open in Sentry
        </a>
      )}
    </span>
  );
}
