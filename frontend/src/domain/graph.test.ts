import { describe, expect, it } from 'vitest';
import { buildViewGraph, failedViewIds, fanoutSummary, groupFanKey } from './graph';
import { chordWorkflow, node, workflow } from './fixtures';
import { toElkGraph } from './elk';

describe('buildViewGraph', () => {
  it('draws a small chord member by member inside a bracket, joined before the callback', () => {
    const v = buildViewGraph(chordWorkflow(3));
    expect(v.nodes.filter((n) => n.kind === 'task').map((n) => n.id).sort()).toEqual(['cb', 'item-0', 'item-1', 'item-2', 'root']);
    expect(v.containers).toEqual([{ id: 'grp:g1', kind: 'chord', groupId: 'g1', children: ['item-0', 'item-1', 'item-2'], taskCount: 3, packed: false, parent: null }]);
    const join = v.nodes.find((n) => n.kind === 'join');
    expect(join).toMatchObject({ id: 'join:g1', done: 3, total: 3, callbackName: 'app.aggregate' });
    // Header → join → callback; no direct header → callback edges remain.
    expect(v.edges.filter((e) => e.target === 'join:g1')).toHaveLength(3);
    expect(v.edges.some((e) => e.source === 'join:g1' && e.target === 'cb')).toBe(true);
    expect(v.edges.some((e) => e.target === 'cb' && e.source.startsWith('item'))).toBe(false);
  });

  it('collapses a large fan-out into one node with counts, and expands it on request', () => {
    const wf = chordWorkflow(200, 50); // items 49, 99, 149, 199 fail
    const v = buildViewGraph(wf);
    const fan = v.nodes.find((n) => n.kind === 'fanout');
    expect(fan?.id).toBe(groupFanKey('g1'));
    expect(fan?.counts).toEqual({ SUCCESS: 196, FAILURE: 4 });
    expect(fan?.state).toBe('FAILURE');
    expect(fanoutSummary(fan?.counts ?? {})).toBe('×200 · 4 failed');
    expect(v.nodes).toHaveLength(4); // root, fan-out, join, callback
    expect(v.containers).toHaveLength(0);
    expect(v.viewIdOf.get('item-150')).toBe(groupFanKey('g1'));
    // root → fan (deduplicated from 200 edges), fan → join, join → cb
    expect(v.edges.map((e) => `${e.source}>${e.target}`).sort()).toEqual(
      ['fan:g:g1>join:g1', 'join:g1>cb', 'root>fan:g:g1'].sort(),
    );
    expect(failedViewIds(v)).toEqual([groupFanKey('g1')]);
    const join = v.nodes.find((n) => n.kind === 'join');
    expect(join).toMatchObject({ done: 196, total: 200 });

    // Expanding 200 members opens two slices of 100 inside the chord's bracket…
    const open = buildViewGraph(wf, { expanded: new Set([groupFanKey('g1')]) });
    const slices = open.nodes.filter((n) => n.kind === 'fanout');
    expect(slices.map((n) => [n.id, n.label, n.members?.length, n.container])).toEqual([
      ['fan:g:g1~0', 'app.process_item #0–99', 100, 'grp:g1'],
      ['fan:g:g1~1', 'app.process_item #100–199', 100, 'grp:g1'],
    ]);
    expect(open.structureKey).not.toBe(v.structureKey);
    // …and expanding a slice draws its members one by one.
    const deeper = buildViewGraph(wf, { expanded: new Set([groupFanKey('g1'), 'fan:g:g1~1']) });
    expect(deeper.nodes.filter((n) => n.kind === 'task')).toHaveLength(102);
    expect(deeper.viewIdOf.get('item-150')).toBe('item-150');
    expect(deeper.viewIdOf.get('item-50')).toBe('fan:g:g1~0');
    expect(deeper.containers[0]?.children).toHaveLength(101);
    expect(deeper.containers[0]?.packed).toBe(true);
    expect(deeper.edges.filter((e) => e.target === 'join:g1').map((e) => e.source)).toEqual(['grp:g1']);
  });

  it('never draws more than one slice of a huge expanded fan-out unless asked', () => {
    const wf = chordWorkflow(2000);
    const v = buildViewGraph(wf, { expanded: new Set([groupFanKey('g1')]) });
    expect(v.nodes.filter((n) => n.kind === 'fanout')).toHaveLength(20);
    expect(v.nodes.filter((n) => n.kind === 'task')).toHaveLength(2);
  });

  it('collapses spawned siblings with the same name and keeps odd ones out', () => {
    const kids = Array.from({ length: 40 }, (_, i) => node(`k${i}`, { name: 'app.child', parent_id: 'p' }));
    const wf = workflow([node('p', { name: 'app.parent' }), ...kids, node('solo', { name: 'app.other', parent_id: 'p' })], {
      edges: [...kids.map((k) => ({ source: 'p', target: k.id, kind: 'spawn' })), { source: 'p', target: 'solo', kind: 'spawn' }],
    });
    const v = buildViewGraph(wf);
    expect(v.nodes.map((n) => n.id).sort()).toEqual(['fan:s:p:app.child', 'p', 'solo']);
    expect(v.edges).toHaveLength(2);
  });

  it('keeps the drawn graph under maxNodes by collapsing the biggest fan-outs first', () => {
    const nodes = [node('root')];
    const groups = [];
    for (let g = 0; g < 30; g++) {
      const members = Array.from({ length: 10 + g }, (_, i) => `g${g}-${i}`);
      for (const m of members) nodes.push(node(m, { parent_id: 'root', group_id: `g${g}` }));
      groups.push({ id: `g${g}`, kind: 'group' as const, members, callback: null });
    }
    const v = buildViewGraph(workflow(nodes, { groups }), { maxNodes: 200 });
    expect(v.nodes.length).toBeLessThanOrEqual(200);
    const fans = v.nodes.filter((n) => n.kind === 'fanout').map((n) => n.members?.length ?? 0);
    // The largest groups (39, 38, …) went first.
    expect(Math.max(...fans)).toBe(39);
    const drawnSizes = v.containers.map((c) => c.children.length);
    expect(Math.max(...drawnSizes)).toBeLessThan(Math.min(...fans));
  });

  it('hides plumbing tasks unless asked', () => {
    const wf = workflow([node('a'), node('u', { name: 'celery.chord_unlock', plumbing: true })], {
      edges: [{ source: 'a', target: 'u', kind: 'spawn' }],
    });
    expect(buildViewGraph(wf).nodes.map((n) => n.id)).toEqual(['a']);
    expect(buildViewGraph(wf, { showPlumbing: true }).edges).toHaveLength(1);
  });

  it('keeps the structure key when only states change', () => {
    const a = chordWorkflow(5);
    const b = chordWorkflow(5);
    b.nodes[2] = { ...b.nodes[2]!, state: 'FAILURE' };
    expect(buildViewGraph(a).structureKey).toBe(buildViewGraph(b).structureKey);
  });

  it('collapses nested groups innermost first (a group of chords)', () => {
    // 3 chords of 30 header tasks each, all inside one outer group that lists every task.
    const nodes = [];
    const groups = [];
    const edges = [];
    const all: string[] = [];
    for (let c = 0; c < 3; c++) {
      const members = Array.from({ length: 30 }, (_, i) => `c${c}-${i}`);
      for (const m of members) nodes.push(node(m, { name: 'app.item', group_id: `ch${c}` }));
      nodes.push(node(`cb${c}`, { name: 'app.sum' }));
      groups.push({ id: `ch${c}`, kind: 'chord' as const, members, callback: `cb${c}` });
      for (const m of members) edges.push({ source: m, target: `cb${c}`, kind: 'chord' });
      all.push(...members, `cb${c}`);
    }
    groups.push({ id: 'outer', kind: 'group' as const, members: all, callback: null });
    const v = buildViewGraph(workflow(nodes, { groups, edges }));
    const fans = v.nodes.filter((n) => n.kind === 'fanout').map((n) => n.id).sort();
    expect(fans).toEqual(['fan:g:ch0', 'fan:g:ch1', 'fan:g:ch2']);
    expect(v.nodes.filter((n) => n.kind === 'join')).toHaveLength(3);
    expect(v.nodes.filter((n) => n.kind === 'task').map((n) => n.id).sort()).toEqual(['cb0', 'cb1', 'cb2']);
    // The outer group is mostly collapsed elsewhere: no bracket around its three leftovers.
    expect(v.containers).toEqual([]);
    expect(v.edges.map((e) => `${e.source}>${e.target}`).sort()).toEqual([
      'fan:g:ch0>join:ch0', 'fan:g:ch1>join:ch1', 'fan:g:ch2>join:ch2', 'join:ch0>cb0', 'join:ch1>cb1', 'join:ch2>cb2',
    ]);
  });

  it('draws a node the server collapsed as a fan-out of its full count, not of its sample', () => {
    const wf = workflow([
      node('root', { name: 'app.prepare' }),
      node('fan:x', {
        name: 'app.score', state: 'FAILURE', parent_id: 'root',
        collapsed: { count: 5000, counts: { SUCCESS: 4990, FAILURE: 10, STARTED: 0 }, member_ids: ['m1', 'm2'], parent_id: 'root', group_id: null },
      }),
    ], { edges: [{ source: 'root', target: 'fan:x', kind: 'spawn' }] });
    const v = buildViewGraph(wf);
    const fan = v.nodes.find((n) => n.id === 'fan:x');
    expect(fan).toMatchObject({ kind: 'fanout', memberCount: 5000, serverCollapsed: true, counts: { SUCCESS: 4990, FAILURE: 10 }, state: 'FAILURE', memberName: 'app.score' });
    expect(v.viewIdOf.get('m2')).toBe('fan:x');
    expect(v.edges.map((e) => e.id)).toEqual(['root>fan:x:spawn']);
  });

  it('draws a chord nested in a group inside the group bracket, with its join', () => {
    const ids = ['a1', 'a2', 'cbA', 'b1', 'b2', 'cbB'];
    const wf = workflow([node('root'), ...ids.map((id) => node(id, { name: id.startsWith('cb') ? 'app.sum' : 'app.add', parent_id: 'root' }))], {
      edges: [
        { source: 'a1', target: 'cbA', kind: 'chord' }, { source: 'a2', target: 'cbA', kind: 'chord' },
        { source: 'b1', target: 'cbB', kind: 'chord' }, { source: 'b2', target: 'cbB', kind: 'chord' },
      ],
      groups: [
        { id: 'outer', kind: 'group', members: ids, callback: null },
        { id: 'A', kind: 'chord', members: ['a1', 'a2'], callback: 'cbA' },
        { id: 'B', kind: 'chord', members: ['b1', 'b2'], callback: 'cbB' },
      ],
    });
    const v = buildViewGraph(wf);
    const box = (id: string) => v.containers.find((c) => c.id === id);
    expect(box('grp:A')?.parent).toBe('grp:outer');
    expect(box('grp:B')?.parent).toBe('grp:outer');
    expect(box('grp:outer')).toMatchObject({ parent: null, taskCount: 6, packed: false });
    expect(v.containers[0]?.id).toBe('grp:outer'); // parents first
    const at = (id: string) => v.nodes.find((n) => n.id === id)?.container;
    expect([at('a1'), at('cbA'), at('join:A')]).toEqual(['grp:A', 'grp:outer', 'grp:outer']);
    const elk = toElkGraph(v);
    const outer = elk.children?.find((c) => c.id === 'grp:outer');
    expect(outer?.children?.map((c) => c.id).sort()).toEqual(['cbA', 'cbB', 'grp:A', 'grp:B', 'join:A', 'join:B']);
  });

  it('nests a chord in the group that lists only its callback', () => {
    const wf = workflow([node('root'), ...['a1', 'a2', 'cbA', 'b1', 'b2', 'cbB'].map((id) => node(id, { parent_id: 'root' }))], {
      groups: [
        { id: 'outer', kind: 'group', members: ['cbA', 'cbB'], callback: null },
        { id: 'A', kind: 'chord', members: ['a1', 'a2'], callback: 'cbA' },
        { id: 'B', kind: 'chord', members: ['b1', 'b2'], callback: 'cbB' },
      ],
    });
    const v = buildViewGraph(wf);
    expect(v.containers.map((c) => [c.id, c.parent])).toEqual([['grp:outer', null], ['grp:A', 'grp:outer'], ['grp:B', 'grp:outer']]);
    expect(v.containers[0]?.taskCount).toBe(6);
  });
});
