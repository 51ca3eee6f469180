import { describe, expect, it } from 'vitest';
import { renderToStaticMarkup } from 'react-dom/server';
import { JsonTree } from './JsonTree';

describe('JsonTree', () => {
  it('renders HTML found in task data as text, never as markup', () => {
    const html = renderToStaticMarkup(
      <JsonTree value={['<img src=x onerror=alert(1)>', { '<b>key</b>': '<script>x()</script>' }]} label="args" />,
    );
    expect(html).not.toContain('<img');
    expect(html).not.toContain('<b>');
    expect(html).not.toContain('<script');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(html).toContain('&lt;b&gt;key&lt;/b&gt;');
  });

  it('shows redaction, truncation and repr markers visibly', () => {
    const html = renderToStaticMarkup(
      <JsonTree
        value={{
          password: '[redacted]',
          blob: { __stemtrace_truncated__: true, preview: 'abc', size: 123456 },
          user: { __stemtrace_repr__: '<User 7>', type: 'app.User' },
        }}
      />,
    );
    expect(html).toMatch(/class="marker redacted"[^>]*>redacted</);
    expect(html).toMatch(/class="marker truncated"[^>]*>truncated · 123,456 B</);
    expect(html).toMatch(/class="marker repr"[^>]*>app\.User</);
    expect(html).toContain('&lt;User 7&gt;');
  });

  it('collapses deep levels and caps long arrays with a "show more" button', () => {
    const html = renderToStaticMarkup(<JsonTree value={{ a: { b: { c: 1 } }, long: Array.from({ length: 250 }, (_, i) => i) }} />);
    expect(html).toContain('1 keys'); // {c: 1} at depth 2 starts collapsed
    expect(html).toContain('Show 50 more');
  });
});
