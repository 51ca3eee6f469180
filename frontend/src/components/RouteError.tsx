// What a page shows when it fails to load or to render: the app frame stays, with a way out.
import { isRouteErrorResponse, Link, useRouteError } from 'react-router';

/** A lazily loaded page whose file is gone (the server was upgraded) or could not be fetched. */
export function isChunkLoadError(err: unknown): boolean {
  const message = err instanceof Error ? err.message : String(err);
  return /dynamically imported module|Importing a module script failed|error loading dynamically imported/i.test(message);
}

export function RouteError() {
  const err = useRouteError();
  if (isChunkLoadError(err)) {
    return (
      <div className="page">
        <div className="error-banner" role="alert">
          <strong>This page could not be loaded.</strong> The stemtrace server may have been upgraded or be unreachable.{' '}
          <button type="button" className="btn small" onClick={() => window.location.reload()}>Reload</button>
        </div>
      </div>
    );
  }
  const message = isRouteErrorResponse(err) ? `${err.status} ${err.statusText}` : err instanceof Error ? err.message : String(err);
  return (
    <div className="page">
      <div className="error-banner" role="alert">
        <strong>Something went wrong on this page:</strong> {message}
      </div>
      <p><Link to="/tasks">Back to the task list</Link></p>
    </div>
  );
}
