// @vitest-environment jsdom
// The Beat page against a mocked API (msw answers the generated client's real requests): entries with
// their last outcome, the strip of runs (each a link to its task) with missed runs marked where they fell,
// and `?entry=` opening one entry's runs.
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { cleanup, render, screen, within } from '@testing-library/react';
import { http, HttpResponse } from 'msw';
import { setupServer } from 'msw/node';
import { createMemoryRouter, RouterProvider } from 'react-router';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PrefsProvider } from '../app/prefs';
import { BeatPage } from './BeatPage';

// A single-source server unless a test says otherwise (the source selector reads /api/health).
const server = setupServer(http.get('*/api/health', () => HttpResponse.json({ ingest: { sources: [] } })));
beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterEach(() => {
  server.resetHandlers();
  cleanup();
});
afterAll(() => server.close());

function mount(path: string) {
  const qc = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  const router = createMemoryRouter([{ path: 'beat', element: <BeatPage /> }], { initialEntries: [path] });
  render(
    <QueryClientProvider client={qc}>
      <PrefsProvider>
        <RouterProvider router={router} />
      </PrefsProvider>
    </QueryClientProvider>,
  );
}

const run = (id: string, sec: number, state = 'SUCCESS') => ({
  task_id: id, name: 'app.tick', state, sent_at: `2026-01-01T00:00:${String(sec).padStart(2, '0')}Z`, finished_at: null, runtime_ms: 3,
  exception_type: state === 'FAILURE' ? 'builtins.ValueError' : null,
});
// newest first, as the API lists them; a gap of 5 s after the run at 0:02
const recent = [run('r4', 8, 'FAILURE'), run('r3', 7), run('r2', 2), run('r1', 1), run('r0', 0)];
const missed = [{ after: '2026-01-01T00:00:02Z', before: '2026-01-01T00:00:07Z', missed: 4, due: '2026-01-01T00:00:03Z' }];
const entry = { entry: 'every-second', task_name: 'app.tick', interval_s: 1, last_run: recent[0], runs: 5, missed, recent };

describe('beat page', () => {
  it('explains how to see beat runs when there are none', async () => {
    server.use(http.get('*/api/beat', () => HttpResponse.json({ since: '2026-01-01T00:00:00Z', items: [] })));
    mount('/beat');
    expect(await screen.findByText('No task sent by celery beat has been seen')).toBeTruthy();
  });

  it('shows each entry with its last outcome and its runs as a strip, the missed runs marked in place', async () => {
    let since: string | null = null;
    server.use(http.get('*/api/beat', ({ request }) => {
      since = new URL(request.url).searchParams.get('since');
      return HttpResponse.json({ since: '2026-01-01T00:00:00Z', items: [entry] });
    }));
    mount('/beat');
    const row = (await screen.findByText('every-second')).closest('tr');
    expect(row).toBeTruthy();
    const cells = within(row as HTMLElement);
    expect(cells.getByText('FAILURE')).toBeTruthy();
    expect(cells.getByRole('link', { name: '5' }).getAttribute('href')).toBe('/tasks?beat=every-second');
    const strip = cells.getByRole('list', { name: 'Latest runs of every-second' });
    const items = [...strip.children].map((li) => li.getAttribute('data-missed') ?? li.querySelector('a')?.getAttribute('href'));
    expect(items).toEqual(['/tasks/r0', '/tasks/r1', '/tasks/r2', '4', '/tasks/r3', '/tasks/r4']);
    expect(since).not.toBeNull();
  });

  it('opens one entry with ?entry=, its runs paged from /api/beat/{entry}', async () => {
    let asked = '';
    server.use(
      http.get('*/api/beat', () => HttpResponse.json({ since: '2026-01-01T00:00:00Z', items: [entry] })),
      http.get('*/api/beat/:entry', ({ params }) => {
        asked = String(params.entry);
        return HttpResponse.json({ entry: 'every-second', interval_s: 1, runs: recent, missed, next_cursor: null });
      }),
    );
    mount('/beat?entry=every-second');
    const section = await screen.findByRole('region', { name: /Runs of every-second/ });
    expect(asked).toBe('every-second');
    expect(await within(section).findByText('4 missed')).toBeTruthy();
    expect(within(section).getAllByRole('row')).toHaveLength(recent.length + 1);
  });

  it('keeps two sources\' entries of one name apart, and opens one with its source', async () => {
    const asked: string[] = [];
    server.use(
      http.get('*/api/health', () => HttpResponse.json({ ingest: { sources: [{ name: 'prod' }, { name: 'staging' }] } })),
      http.get('*/api/beat', () =>
        HttpResponse.json({
          since: '2026-01-01T00:00:00Z',
          items: [{ ...entry, entry: 'cleanup', source: 'prod' }, { ...entry, entry: 'cleanup', source: 'staging', runs: 2 }],
        }),
      ),
      http.get('*/api/beat/:entry', ({ request, params }) => {
        asked.push(`${String(params.entry)}@${new URL(request.url).searchParams.get('source')}`);
        return HttpResponse.json({ entry: 'cleanup', source: 'staging', interval_s: 1, runs: recent, missed, next_cursor: null });
      }),
    );
    mount('/beat');
    const rows = (await screen.findAllByRole('button', { name: 'cleanup' })).map((b) => b.closest('tr') as HTMLElement);
    expect(rows.map((r) => r.getAttribute('data-source'))).toEqual(['prod', 'staging']);
    const staging = within(rows[1] as HTMLElement);
    expect(staging.getByRole('link', { name: '2' }).getAttribute('href')).toBe('/tasks?beat=cleanup&source=staging');
    staging.getByRole('button', { name: 'cleanup' }).click();
    expect(await screen.findByRole('region', { name: /Runs of cleanup/ })).toBeTruthy();
    expect(asked).toEqual(['cleanup@staging']);
  });
});
