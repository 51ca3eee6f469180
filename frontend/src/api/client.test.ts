import { afterEach, describe, expect, it, vi } from 'vitest';
import { ApiError, api, buildUrl } from './client';

afterEach(() => vi.unstubAllGlobals());

describe('api client', () => {
  it('builds URLs with repeated params, skipping empties, under a root prefix', () => {
    expect(buildUrl('/tasks', { state: ['FAILURE', 'RETRY'], name: '', q: 'x y', limit: 50, cursor: null }, '/st')).toBe(
      '/st/api/tasks?state=FAILURE&state=RETRY&q=x+y&limit=50',
    );
  });
  it('surfaces the server error message', async () => {
    vi.stubGlobal('fetch', async () =>
      new Response(JSON.stringify({ error: { status: 404, message: 'Task abc not found', detail: null } }), { status: 404 }));
    await expect(api.task('abc')).rejects.toMatchObject({ name: 'ApiError', status: 404, message: 'Task abc not found' });
  });
  it('reports an unreachable server as an ApiError', async () => {
    vi.stubGlobal('fetch', async () => {
      throw new TypeError('Failed to fetch');
    });
    const err = await api.workers().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).message).toContain('Cannot reach');
  });
});
