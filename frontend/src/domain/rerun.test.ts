import { describe, expect, it } from 'vitest';
import { asCli, asCode, pyLiteral, shellQuote, unsafeReason } from './rerun';

describe('copy as code / as CLI', () => {
  const task = {
    name: 'proj.images.resize',
    args: [4527, 1280],
    kwargs: { fmt: 'png', keep: true, crop: null },
    queue: 'images',
    routing_key: 'image.compress',
  };

  it('writes the send_task call with Python literals', () => {
    expect(asCode(task)).toEqual({
      text:
        'app.send_task("proj.images.resize", args=[4527, 1280], kwargs={"fmt": "png", "keep": True, "crop": None}, ' +
        'queue="images", routing_key="image.compress")',
      unsafe: null,
    });
  });

  it('writes the celery call command with JSON arguments, shell-quoted', () => {
    expect(asCli(task).text).toBe(
      'celery -A proj call proj.images.resize --args=\'[4527,1280]\' ' +
        '--kwargs=\'{"fmt":"png","keep":true,"crop":null}\' --queue=images --routing-key=image.compress',
    );
    expect(shellQuote("it's")).toBe(`'it'"'"'s'`);
  });

  it('marks a copy whose values were cut, redacted or only a repr as unsafe', () => {
    expect(unsafeReason({ name: 'a', args: ['[redacted]'], kwargs: {} })).toContain('redacted');
    const cut = { __stemtrace_truncated__: true, preview: 'abc', size: 90000 };
    expect(unsafeReason({ name: 'a', args: [cut], kwargs: {} })).toContain('cut to a preview');
    expect(unsafeReason({ name: 'a', args: null, kwargs: null, args_repr: '(<Obj>,)' })).toContain('repr');
    expect(asCode({ name: 'a', args: [{ __stemtrace_repr__: '<X>', type: 'm.X' }], kwargs: {} }).unsafe).toContain(
      'repr',
    );
  });

  it('keeps strings exact in Python', () => {
    expect(pyLiteral(['a"b', 'é\n'])).toBe('["a\\"b", "é\\n"]');
  });
});
