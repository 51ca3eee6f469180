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
  http.get('*/api/workers', () => HttpResponse.json({ items: [] })),
  http.get('*/api/stats/tasks', () => HttpResponse.json({ items: [] })),
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

describe('task page', () => {
  it('sends the filters of the URL to the API', async () => {
    let seen: URL | null = null;
    server.use(...quiet, http.get('*/api/tasks', ({ request }) => {
      seen = new URL(request.url);
      return HttpResponse.json(empty);
    }));
    mount('/tasks?state=FAILURE&state=LOST&workflow=wf1', 'tasks', <TasksPage />);
    expect(await screen.findByText(/No task matches these filters/)).toBeTruthy();
    const url = seen as URL | null;
    expect(url?.searchParams.getAll('state')).toEqual(['FAILURE', 'LOST']);
    expect(url?.searchParams.get('workflow')).toBe('wf1');
    expect(url?.searchParams.has('name')).toBe(false);
  });
  it('says the task is not in the store on a 404', async () => {
    server.use(http.get('*/api/tasks/:id', () => HttpResponse.json({ error: { status: 404, message: 'Task abc not found', detail: null } }, { status: 404 })));
    mount('/tasks/abc', 'tasks/:id', <TaskPage />);
    expect(await screen.findByText(/This task is not in the store/)).toBeTruthy();
    expect((await screen.findByRole('alert')).textContent).toContain('Task abc not found');
  });
});
