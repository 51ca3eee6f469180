import { describe, expect, it } from 'vitest';
import type { TaskSummary } from '../api/types';
import { failureRows, lostRows } from './failures';

const lost = (id: string, name: string, at: string) => ({ id, name, state: 'LOST', finished_at: at }) as unknown as TaskSummary;

describe('failure rows', () => {
  it('groups LOST tasks by name, latest first seen', () => {
    const rows = lostRows([lost('a', 'x.ship', '2026-01-01T00:00:01Z'), lost('b', 'x.ship', '2026-01-01T00:00:05Z'), lost('c', 'x.pay', '2026-01-01T00:00:02Z')]);
    expect(rows.map((r) => [r.name, r.state, r.count, r.lastSeen])).toEqual([
      ['x.ship', 'LOST', 2, '2026-01-01T00:00:05Z'],
      ['x.pay', 'LOST', 1, '2026-01-01T00:00:02Z'],
    ]);
  });
  it('keeps the server groups as FAILURE rows', () => {
    const [row] = failureRows([{ name: 'x.a', exception_type: 'builtins.KeyError', count: 3, last_seen: null, last_task_id: 't', sample_message: 'k' }]);
    expect(row).toMatchObject({ state: 'FAILURE', count: 3, exceptionType: 'builtins.KeyError', latest: 't', message: 'k' });
  });
});
