import { describe, expect, it } from 'vitest';
import { retryStorms } from './retries';

describe('retryStorms', () => {
  it('keeps names that retry often and widely, most retries first', () => {
    const stats = [
      { name: 'a.charge_card', total: 40, retried: 12, retries: 37 },
      { name: 'a.sync', total: 10, retried: 3, retries: 6 },
      { name: 'a.rare', total: 1000, retried: 2, retries: 9 }, // 0.2% of its tasks: no storm
      { name: 'a.once', total: 3, retried: 1, retries: 2 }, // too few retries
      { name: 'a.calm', total: 50 }, // an older server: no retry counts
    ];
    expect(retryStorms(stats).map((s) => s.name)).toEqual(['a.charge_card', 'a.sync']);
  });
});
