import { describe, expect, it } from 'vitest';
import { findTaskId, markerOf, previewValue } from './values';

describe('values', () => {
  it('recognises the three markers', () => {
    expect(markerOf('[redacted]')).toEqual({ kind: 'redacted' });
    expect(markerOf({ __stemtrace_truncated__: true, preview: 'abc', size: 9000 })).toEqual({
      kind: 'truncated', preview: 'abc', size: 9000,
    });
    expect(markerOf({ __stemtrace_repr__: '<Foo 1>', type: 'app.Foo' })).toEqual({
      kind: 'repr', repr: '<Foo 1>', type: 'app.Foo',
    });
    expect(markerOf({ preview: 'x' })).toBeNull();
    expect(markerOf('plain')).toBeNull();
  });
  it('previews nested values with markers and a length cap', () => {
    expect(previewValue([1, 'a', null, { password: '[redacted]' }])).toBe('[1, "a", None, {password: ‹redacted›}]');
    const long = previewValue(Array.from({ length: 500 }, (_, i) => i), 40);
    expect(long.length).toBe(40);
    expect(long.endsWith('…')).toBe(true);
  });
  it('finds a task id in pasted text', () => {
    expect(findTaskId('  3F2504E0-4F89-11D3-9A0C-0305E82C3301 ')).toBe('3f2504e0-4f89-11d3-9a0c-0305e82c3301');
    expect(findTaskId('http://x/tasks/3f2504e0-4f89-11d3-9a0c-0305e82c3301?a=1')).toBe('3f2504e0-4f89-11d3-9a0c-0305e82c3301');
    expect(findTaskId('not an id')).toBeNull();
  });
});

describe('exceptionName', () => {
  it('keeps the class, not its module path', async () => {
    const { exceptionName } = await import('./values');
    expect(exceptionName('builtins.ValueError')).toBe('ValueError');
    expect(exceptionName('stemtrace.demo.errors.PaymentDeclined')).toBe('PaymentDeclined');
    expect(exceptionName('Plain')).toBe('Plain');
    expect(exceptionName(null)).toBe('');
  });
});
