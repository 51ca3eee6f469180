// @vitest-environment jsdom
// Each page's loading, empty and error states against a mocked API (msw answers the generated client's
// real HTTP requests, so URLs and parameters are exercised too).
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { cleanup, render, screen } from '@testing-library/react';
import { http, HttpResponse, delay } from 'msw';
import { setupServer } from 'msw/node';
import type { ReactNode } from 'react';
import { createMemoryRouter, RouterProvider } from 'react-router';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
// uPlot (the workers page's sparklines) asks matchMedia for the pixel ratio when it loads; jsdom has none.
vi.hoisted(() => {
  window.matchMedia ??= ((query: string) => ({
    matches: false, media: query, onchange: null, addListener: () => {}, removeListener: () => {},
    addEventListener: () => {}, removeEventListener: () => {}, dispatchEvent: () => false,
  })) as typeof window.matchMedia;
});
import { PrefsProvider } from '../app/prefs';
import { AttentionPage } from './AttentionPage';
import { FailuresPage } from './FailuresPage';
import { TaskPage } from './TaskPage';
import { TasksPage } from './TasksPage';
import { WorkersPage } from './WorkersPage';
import { WorkflowsPage } from './WorkflowsPage';

const server = setupServer();
beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterEach(() => {
  server.resetHandlers();
  cleanup();
});
afterAll(() => server.close());

const empty = { items: [], next_cursor: null };
const fail = () => HttpResponse.json({ error: { status: 503, message: 'store unavailable', detail: null } }, { status: 503 });
const never = async () => {
  await delay('infinite');
  return HttpResponse.json(empty);
};

function mount(path: string, route: string, element: ReactNode) {
  const qc = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  const router = createMemoryRouter([{ path: route, element }], { initialEntries: [path] });
  render(
    <QueryClientProvider client={qc}>
      <PrefsProvider>
        <RouterProvider router={router} />
      </PrefsProvider>
    </QueryClientProvider>,
  );
}

const lists = [
  { name: 'tasks', path: '/tasks', el: <TasksPage />, api: '*/api/tasks', loading: /Loading tasks/, empty: /No events yet/ },
  { name: 'workflows', path: '/workflows', el: <WorkflowsPage />, api: '*/api/workflows', loading: /Loading workflows/, empty: /No workflows yet/ },
  { name: 'failures', path: '/failures', el: <FailuresPage />, api: '*/api/failures', loading: /Loading failures/, empty: /No failures in this period/ },
  { name: 'workers', path: '/workers', el: <WorkersPage />, api: '*/api/workers', loading: /Loading workers/, empty: /No worker has been seen/ },
];
const quiet = [
  http.get('*/api/task-names', () => HttpResponse.json({ items: [] })),
  http.get('*/api/tasks', () => HttpResponse.json(empty)),
  http.get('*/api/workers', () => HttpResponse.json({ items: [] })),
  http.get('*/api/stats/tasks', () => HttpResponse.json({ items: [] })),
  http.get('*/api/health', () => HttpResponse.json({ status: 'ok', ingest: { sources: [] } })),
];

describe.each(lists)('$name page', ({ path, el, api, loading, empty: emptyText }) => {
  it('says it is loading while the API has not answered', async () => {
    server.use(http.get(api, never), ...quiet);
    mount(path, path.slice(1), el);
    expect(await screen.findByText(loading)).toBeTruthy();
  });
  it('explains an empty answer', async () => {
    server.use(...quiet, http.get(api, () => HttpResponse.json(empty)));
    mount(path, path.slice(1), el);
    expect(await screen.findByText(emptyText)).toBeTruthy();
  });
  it("shows the server's error message and status", async () => {
    server.use(http.get(api, fail), ...quiet);
    mount(path, path.slice(1), el);
    const alert = await screen.findByRole('alert');
    expect(alert.textContent).toContain('store unavailable');
    expect(alert.textContent).toContain('HTTP 503');
  });
});

const twoSources = http.get('*/api/health', () => HttpResponse.json({
  status: 'ok', ingest: { sources: [{ name: 'orders', url: 'redis://a', status: 'ok', events: 1 }, { name: 'billing', url: 'amqp://b', status: 'ok', events: 1 }] },
}));

describe('workflows page', () => {
  it('scopes the list and its name suggestions to the source chosen, and tags each row with it', async () => {
    let seen: URL | null = null;
    let names: URL | null = null;
    const wf = {
      id: 'w1', name: 'proj.order', state: 'SUCCESS', task_count: 2, counts: { SUCCESS: 2 }, started_at: null, finished_at: null,
      scheduled_for: null, shape: null, source: 'orders',
    };
    server.use(http.get('*/api/workflows', ({ request }) => {
      seen = new URL(request.url);
      return HttpResponse.json({ items: [wf], next_cursor: null });
    }), http.get('*/api/task-names', ({ request }) => {
      names = new URL(request.url);
      return HttpResponse.json({ items: [] });
    }), twoSources);
    mount('/workflows?source=orders', 'workflows', <WorkflowsPage />);
    const select = (await screen.findByLabelText('Source')) as HTMLSelectElement;
    expect(select.value).toBe('orders');
    await vi.waitFor(() => expect([...select.options].map((o) => o.value)).toEqual(['', 'orders', 'billing']));
    expect(await screen.findByText('orders', { selector: '.source-tag' })).toBeTruthy();
    expect((seen as URL | null)?.searchParams.get('source')).toBe('orders');
    await vi.waitFor(() => expect((names as URL | null)?.searchParams.get('source')).toBe('orders'));
  });
  it('shows no source selector and sends no source with a single source', async () => {
    let seen: URL | null = null;
    server.use(http.get('*/api/workflows', ({ request }) => {
      seen = new URL(request.url);
      return HttpResponse.json(empty);
    }), ...quiet, http.get('*/api/health', () => HttpResponse.json({ status: 'ok', ingest: { sources: [] } })));
    mount('/workflows', 'workflows', <WorkflowsPage />);
    expect(await screen.findByText(/No workflows yet/)).toBeTruthy();
    expect(screen.queryByLabelText('Source')).toBeNull();
    expect((seen as URL | null)?.searchParams.has('source')).toBe(false);
  });
});

describe('failures page', () => {
  it('asks for the failures of the source chosen', async () => {
    let seen: URL | null = null;
    server.use(http.get('*/api/failures', ({ request }) => {
      seen = new URL(request.url);
      return HttpResponse.json({ items: [] });
    }), ...quiet, twoSources);
    mount('/failures?source=billing', 'failures', <FailuresPage />);
    expect(((await screen.findByLabelText('Source')) as HTMLSelectElement).value).toBe('billing');
    await vi.waitFor(() => expect((seen as URL | null)?.searchParams.get('source')).toBe('billing'));
  });
});

describe('task page', () => {
  it('sends the filters of the URL to the API', async () => {
    let seen: URL | null = null;
    server.use(http.get('*/api/tasks', ({ request }) => {
      seen = new URL(request.url);
      return HttpResponse.json(empty);
    }), ...quiet);
    mount('/tasks?state=FAILURE&state=LOST&workflow=wf1', 'tasks', <TasksPage />);
    expect(await screen.findByText(/No task matches these filters/)).toBeTruthy();
    const url = seen as URL | null;
    expect(url?.searchParams.getAll('state')).toEqual(['FAILURE', 'LOST']);
    expect(url?.searchParams.get('workflow')).toBe('wf1');
    expect(url?.searchParams.has('name')).toBe(false);
  });
  it('offers a source selector only when the server has several sources', async () => {
    let seen: URL | null = null;
    const task = {
      id: 't1', name: 'proj.ship', state: 'SUCCESS', workflow_id: 't1', parent_id: null, root_id: null, group_id: null,
      worker: 'w1@h', queue: 'celery', retries: 0, sent_at: null, received_at: null, started_at: null, finished_at: null,
      runtime_ms: 1, exception_type: null, source: 'orders',
    };
    server.use(http.get('*/api/tasks', ({ request }) => {
      seen = new URL(request.url);
      return HttpResponse.json({ items: [task], next_cursor: null });
    }), http.get('*/api/health', () => HttpResponse.json({
      status: 'ok', ingest: { sources: [{ name: 'orders', url: 'redis://a', status: 'ok', events: 1 }, { name: 'billing', url: 'amqp://b', status: 'ok', events: 1 }] },
    })), ...quiet.slice(0, 1), ...quiet.slice(2));
    mount('/tasks?source=orders', 'tasks', <TasksPage />);
    const select = (await screen.findByLabelText('Source')) as HTMLSelectElement;
    expect(select.value).toBe('orders');
    await vi.waitFor(() => expect([...select.options].map((o) => o.value)).toEqual(['', 'orders', 'billing']));
    expect((seen as URL | null)?.searchParams.get('source')).toBe('orders');
  });
  it('shows no source selector with a single source', async () => {
    server.use(...quiet, http.get('*/api/health', () => HttpResponse.json({ status: 'ok', ingest: { sources: [] } })));
    mount('/tasks', 'tasks', <TasksPage />);
    expect(await screen.findByText(/No events yet/)).toBeTruthy();
    expect(screen.queryByLabelText('Source')).toBeNull();
  });
  it('says the task is not in the store on a 404', async () => {
    server.use(http.get('*/api/tasks/:id', () => HttpResponse.json({ error: { status: 404, message: 'Task abc not found', detail: null } }, { status: 404 })));
    mount('/tasks/abc', 'tasks/:id', <TaskPage />);
    expect(await screen.findByText(/This task is not in the store/)).toBeTruthy();
    expect((await screen.findByRole('alert')).textContent).toContain('Task abc not found');
  });
});

describe('needs attention (home)', () => {
  const health = (over: Record<string, unknown> = {}) => ({
    status: 'ok', version: 'x', ingest: { enabled: true, status: 'ok', events: 0, stored: 0, batches: 0, malformed: {}, rate_per_s: 0, error: null, lag: null, last_commit_at: null, source: null },
    store: { ok: true, error: null, url: 'sqlite://', schema_version: 1, workflows: 0 },
    library: { processes: 1, sent: 0, dropped: 0, errors: 0, sources: [] },
    retention: { retention_s: 7 * 86400, failure_retention_s: 30 * 86400, max_tasks: null, behind: false, evicted_workflows: 0, expired_workflows: 0, last_run_at: null },
    ...over,
  });
  const base = (h: object, beat: object[] = []) => [
    http.get('*/api/health', () => HttpResponse.json(h)),
    http.get('*/api/beat', () => HttpResponse.json({ since: '2026-01-01T00:00:00Z', items: beat })),
    http.get('*/api/quarantine', () => HttpResponse.json({ items: [] })),
    http.get('*/api/stats/tasks', () => HttpResponse.json({ items: [] })),
    http.get('*/api/tasks', () => HttpResponse.json(empty)),
  ];

  it('says all is well, and since when, with nothing to show', async () => {
    server.use(...base(health()), http.get('*/api/failures', () => HttpResponse.json({ items: [] })),
      http.get('*/api/stuck', () => HttpResponse.json({ items: [] })), http.get('*/api/workers', () => HttpResponse.json({ items: [] })));
    mount('/', '/', <AttentionPage />);
    expect(await screen.findByText('All is well')).toBeTruthy();
    expect(screen.getByText(/No failure in the last 7 days/)).toBeTruthy();
    expect(screen.getByText(/Retention in force: workflows are kept 7 days, failed ones 30 days/)).toBeTruthy();
  });

  it('lists stuck tasks, workers gone with tasks, and event losses, each linked', async () => {
    server.use(
      http.get('*/api/quarantine', () => HttpResponse.json({ items: [{ reason: 'undecodable', kind: 'message', count: 4, first_seen: null, last_seen: null, detail: 'not JSON', sample: 'x' }] })),
      ...base(health({ status: 'degraded', reasons: ['12 events lost in the last hour'], library: { processes: 1, sent: 5, dropped: 3, errors: 0, sources: [] } }), [
        { entry: 'nightly', task_name: 'app.report', interval_s: 60, last_run: null, runs: 3, recent: [],
          missed: [{ after: '2026-01-01T00:00:00Z', before: null, missed: 4, due: '2026-01-01T00:01:00Z' }] },
        { entry: 'fine', task_name: 'app.tick', interval_s: 1, last_run: null, runs: 9, recent: [], missed: [] },
      ]),
      http.get('*/api/failures', () => HttpResponse.json({ items: [] })),
      http.get('*/api/stuck', () => HttpResponse.json({ items: [{ task_id: 't-1', name: 'app.ship', state: 'PENDING', reason: 'unconsumed_queue', detail: "no online worker consumes queue 'slow'", since: '2026-01-01T00:00:00Z' }] })),
      http.get('*/api/workers', () => HttpResponse.json({ items: [{ hostname: 'w1@h', online: false, active: 2, active_tasks: ['a', 'b'], queues: [], registered: [], concurrency: 1, last_heartbeat: null, loadavg: null, offline_at: '2026-01-01T00:00:00Z', online_at: null, pid: 1, pool: 'prefork', processed: 0, versions: null }] })),
    );
    mount('/', '/', <AttentionPage />);
    const stuck = await screen.findByRole('link', { name: 'app.ship' });
    expect(stuck.getAttribute('href')).toBe('/tasks/t-1');
    expect(screen.getByText(/no online worker consumes queue 'slow'/)).toBeTruthy();
    expect(screen.getByRole('link', { name: '2 tasks' }).getAttribute('href')).toBe('/tasks?state=STARTED&state=LOST&worker=w1%40h');
    expect(screen.getByText('12 events lost in the last hour')).toBeTruthy();
    expect(screen.getByText(/3 events were dropped by the capture library/)).toBeTruthy();
    expect(screen.getByText('not JSON')).toBeTruthy();
    const beat = screen.getByRole('region', { name: 'Missed beat runs' });
    expect(beat.textContent).toContain('nightly missed 4 runs');
    expect(beat.textContent).toContain('none sent since');
    expect(beat.textContent).not.toContain('fine');
    expect(screen.getByRole('link', { name: 'nightly' }).getAttribute('href')).toBe('/beat?entry=nightly');
  });
});

describe('workers page', () => {
  const worker = (hostname: string, status: string, online: boolean) => ({
    hostname, status, online, active: online ? 1 : 2, active_tasks: online ? ['t1'] : ['t2', 't3'], queues: ['celery'],
    registered: [], concurrency: 2, last_heartbeat: null, loadavg: null, offline_at: null, online_at: null, pid: 1,
    pool: 'prefork', processed: 10, versions: null,
  });
  it('separates online, recently offline and (on request) expired workers', async () => {
    let asked: string | null = null;
    server.use(
      http.get('*/api/stats/tasks', () => HttpResponse.json({ items: [] })),
      http.get('*/api/workers', ({ request }) => {
        asked = new URL(request.url).searchParams.get('expired');
        return asked === 'true'
          ? HttpResponse.json({ items: [worker('a@1', 'online', true), worker('b@2', 'offline', false), worker('c@3', 'expired', false)], expired: 0 })
          : HttpResponse.json({ items: [worker('a@1', 'online', true), worker('b@2', 'offline', false)], expired: 1 });
      }),
    );
    mount('/workers', 'workers', <WorkersPage />);
    expect(await screen.findByRole('region', { name: 'Online' })).toBeTruthy();
    expect(screen.getByRole('region', { name: 'Recently offline' }).textContent).toContain('b@2');
    expect(screen.queryByRole('region', { name: 'Expired' })).toBeNull();
    screen.getByRole('button', { name: 'show them' }).click();
    expect(await screen.findByRole('region', { name: 'Expired' })).toBeTruthy();
    expect(asked).toBe('true');
  });
});
