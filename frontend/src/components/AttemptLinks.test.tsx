import { describe, expect, it } from 'vitest';
import { renderToStaticMarkup } from 'react-dom/server';
import { AttemptLinks } from './AttemptLinks';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const EVENT = 'fc6d8c0c43fc4630ad850ee518f1b9d0';

describe('AttemptLinks', () => {
  it('links the attempt to its trace and its Sentry event, in a new tab', () => {
    const html = renderToStaticMarkup(
      <AttemptLinks
        attempt={{
          trace_id: TRACE,
          sentry_event_id: EVENT,
          trace_url: `https://tempo.example/trace/${TRACE}`,
          sentry_url: `https://sentry.example/organizations/acme/issues/?query=${EVENT}`,
        }}
      />,
    );
    expect(html).toContain(`href="https://tempo.example/trace/${TRACE}"`);
    expect(html).toMatch(/>Open trace</);
    expect(html).toContain(`href="https://sentry.example/organizations/acme/issues/?query=${EVENT}"`);
    expect(html).toMatch(/>Open in Sentry</);
    expect(html).toContain('rel="noopener noreferrer"');
  });

  it('shows only the links the server built, and never a non-web link', () => {
    const onlyTrace = renderToStaticMarkup(
      <AttemptLinks attempt={{ trace_id: TRACE, sentry_event_id: null, trace_url: `https://t/${TRACE}`, sentry_url: null }} />,
    );
    expect(onlyTrace).toContain('Open trace');
    expect(onlyTrace).not.toContain('Sentry');
    const none = renderToStaticMarkup(
      <AttemptLinks attempt={{ trace_id: null, sentry_event_id: null, trace_url: 'javascript:alert(1)', sentry_url: null }} />,
    );
    expect(none).toBe('');
  });
});
