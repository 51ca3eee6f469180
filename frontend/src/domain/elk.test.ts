import { describe, expect, it } from 'vitest';
import ELK from 'elkjs/lib/elk.bundled.js';
import { buildViewGraph } from './graph';
import { readLayout, toElkGraph, type ElkShape } from './elk';
import { chordWorkflow } from './fixtures';

describe('ELK input', () => {
  it('nests group members inside their bracket and keeps all edges at the root', () => {
    const g = toElkGraph(buildViewGraph(chordWorkflow(3)));
    const bracket = g.children?.find((c) => c.id === 'grp:g1');
    expect(bracket?.children?.map((c) => c.id)).toEqual(['item-0', 'item-1', 'item-2']);
    expect(g.children?.some((c) => c.id === 'item-0')).toBe(false);
    expect(g.edges?.length).toBe(3 + 3 + 1);
  });

  it('lays out left to right: root before the group, the group before the join and the callback', async () => {
    const elk = new ELK();
    const laid = (await elk.layout(toElkGraph(buildViewGraph(chordWorkflow(3))) as never)) as unknown as ElkShape;
    const pos = readLayout(laid);
    const root = pos.get('root')!;
    const bracket = pos.get('grp:g1')!;
    const join = pos.get('join:g1')!;
    const cb = pos.get('cb')!;
    expect(pos.get('item-0')?.parent).toBe('grp:g1');
    expect(root.x + root.width).toBeLessThanOrEqual(bracket.x);
    expect(bracket.x + bracket.width).toBeLessThanOrEqual(join.x);
    expect(join.x + join.width).toBeLessThanOrEqual(cb.x);
  });

  it('packs a big group into a grid and keeps it between its neighbours', async () => {
    const view = buildViewGraph(chordWorkflow(20));
    expect(view.containers[0]?.packed).toBe(true);
    // Edges to and from the members attach to the bracket.
    expect(view.edges.map((e) => `${e.source}>${e.target}`).sort()).toEqual(['grp:g1>join:g1', 'join:g1>cb', 'root>grp:g1']);
    const laid = (await new ELK().layout(toElkGraph(view) as never)) as unknown as ElkShape;
    const pos = readLayout(laid);
    const xs = new Set(Array.from({ length: 20 }, (_, i) => pos.get(`item-${i}`)?.x));
    const ys = new Set(Array.from({ length: 20 }, (_, i) => pos.get(`item-${i}`)?.y));
    expect(xs.size).toBeGreaterThan(1);
    expect(ys.size).toBeGreaterThan(1);
    const root = pos.get('root')!;
    const bracket = pos.get('grp:g1')!;
    const join = pos.get('join:g1')!;
    expect(root.x + root.width).toBeLessThanOrEqual(bracket.x);
    expect(bracket.x + bracket.width).toBeLessThanOrEqual(join.x);
    for (let i = 0; i < 20; i++) {
      const m = pos.get(`item-${i}`)!;
      expect(m.x + m.width).toBeLessThanOrEqual(bracket.width);
      expect(m.y + m.height).toBeLessThanOrEqual(bracket.height);
    }
  });
});
