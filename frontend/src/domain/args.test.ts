import { describe, expect, it } from 'vitest';
import { argDigest, callText, shortTaskName } from './args';

describe('arguments as a call', () => {
  it('renders JSON previews as Python-looking calls', () => {
    expect(callText('imaging.resize_image', '[[4527,1280],{}]')).toBe('resize_image(4527, 1280)');
    expect(callText('t.send', '[["a@b.c"],{"retry":true,"to":null}]')).toBe("send('a@b.c', retry=True, to=None)");
    expect(callText('t.noop', null)).toBe('noop()');
  });
  it('keeps a cut preview readable and marks it', () => {
    expect(argDigest('[[1,2,"abcdef')).toBe('1, 2, "abcdef…');
  });
  it('reads Python reprs', () => {
    expect(argDigest("(4527, 1280) {}")).toBe('4527, 1280');
    expect(argDigest("('x',) {'mode': 'fast', 'n': 2}")).toBe("'x', mode='fast', n=2");
  });
  it('shortens long digests and task names', () => {
    expect(argDigest(`[[${'9,'.repeat(50)}9],{}]`, 10)).toHaveLength(10);
    expect(shortTaskName('a.b.c')).toBe('c');
    expect(shortTaskName('plain')).toBe('plain');
  });
});
