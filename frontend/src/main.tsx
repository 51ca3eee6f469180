import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { lazy, StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { createBrowserRouter, RouterProvider } from 'react-router';
import { apiRoot } from './api/client';
import { ApiError } from './api/client';
import { LiveProvider } from './app/live';
import { PrefsProvider } from './app/prefs';
import { Layout } from './components/Layout';
import { RouteError } from './components/RouteError';
import { AttentionPage } from './pages/AttentionPage';
import { FailuresPage } from './pages/FailuresPage';
import { NotFoundPage } from './pages/NotFoundPage';
import { TaskPage } from './pages/TaskPage';
import { TasksPage } from './pages/TasksPage';
import { WorkflowsPage } from './pages/WorkflowsPage';
import './styles.css';

// The heavy pages load on first visit, so the task list (the usual first page) starts small:
// the workflow page brings React Flow, the Gantt and the ELK client; the workers page uPlot.
const WorkflowPage = lazy(() => import('./pages/WorkflowPage').then((m) => ({ default: m.WorkflowPage })));
const WorkersPage = lazy(() => import('./pages/WorkersPage').then((m) => ({ default: m.WorkersPage })));
const BeatPage = lazy(() => import('./pages/BeatPage').then((m) => ({ default: m.BeatPage })));

const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      staleTime: 2000,
      refetchOnWindowFocus: false,
      // A 404 will not fix itself; other failures get one more try.
      retry: (count, err) => !(err instanceof ApiError && err.status >= 400 && err.status < 500) && count < 1,
    },
  },
});

const router = createBrowserRouter(
  [
    {
      element: <Layout />,
      children: [
        {
          // A page that fails to load or render shows its error inside the app frame.
          errorElement: <RouteError />,
          children: [
            { index: true, element: <AttentionPage /> },
            { path: 'tasks', element: <TasksPage /> },
            { path: 'tasks/:id', element: <TaskPage /> },
            { path: 'workflows', element: <WorkflowsPage /> },
            { path: 'workflows/:id', element: <WorkflowPage /> },
            { path: 'failures', element: <FailuresPage /> },
            { path: 'workers', element: <WorkersPage /> },
            { path: 'beat', element: <BeatPage /> },
            { path: '*', element: <NotFoundPage /> },
          ],
        },
      ],
    },
  ],
  { basename: apiRoot() || '/' },
);

// A deep link to a workflow: load its page and the layout worker while React and the data are on their way.
if (/\/workflows\/[^/]+/.test(window.location.pathname)) {
  void import('./components/graph/layoutClient').then((m) => m.warmLayoutEngine(), () => undefined);
}

const rootEl = document.getElementById('root');
if (!rootEl) throw new Error('#root missing from index.html');
createRoot(rootEl).render(
  <StrictMode>
    <QueryClientProvider client={queryClient}>
      <PrefsProvider>
        <LiveProvider>
          <RouterProvider router={router} />
        </LiveProvider>
      </PrefsProvider>
    </QueryClientProvider>
  </StrictMode>,
);
