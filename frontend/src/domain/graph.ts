// Turns the API's workflow graph into the graph the UI draws: big fan-outs collapsed into one node,
// chords joined through a "N of M done → callback" node, groups as brackets around their members.
// Pure and deterministic, so the layout can be cached on the result's structure key.
import type { WorkflowDetail, WorkflowNode } from '../api/types';
import { rollUp } from './states';

export type ViewNodeKind = 'task' | 'fanout' | 'join';

export interface ViewNode {
  id: string;
  kind: ViewNodeKind;
  /** The task this node stands for (task nodes) or a representative member (fan-outs). */
  taskId: string | null;
  label: string;
  state: string;
  /** Container (group bracket) the node sits in, if any. */
  container: string | null;
  /** Fan-out: the member task ids and their state counts. */
  members?: string[];
  counts?: Record<string, number>;
  /** Fan-out: the members' task name when they share one (what its count links filter by). */
  memberName?: string | null;
  /** Fan-out: how many tasks it stands for (a server-collapsed node lists only a sample of them). */
  memberCount?: number;
  /** Fan-out: what its members share, so its counts link to exactly them (a slice has neither). */
  memberGroup?: string | null;
  memberParent?: string | null;
  /** Collapsed by the server (a huge workflow): it cannot expand here, only list its members. */
  serverCollapsed?: boolean;
  /** Chord join: how many header tasks succeeded out of how many, and the callback's name. */
  done?: number;
  total?: number;
  callbackName?: string | null;
}

export interface ViewEdge {
  id: string;
  source: string;
  target: string;
  kind: string;
}

export interface ViewContainer {
  id: string;
  kind: 'group' | 'chord';
  groupId: string;
  children: string[];
  /** Tasks inside, counting every member of a collapsed slice (not the slices themselves). */
  taskCount: number;
  /** Many members: packed into a grid, edges from and to outside attached to the bracket itself. */
  packed: boolean;
  /** The bracket this one is drawn inside (a chord inside a group of chords), or null. */
  parent: string | null;
}

export interface ViewGraph {
  nodes: ViewNode[];
  edges: ViewEdge[];
  containers: ViewContainer[];
  /** View id of every task (a fan-out's members all map to the fan-out). */
  viewIdOf: Map<string, string>;
  /** Changes only when what is drawn changes shape (not when states change). */
  structureKey: string;
}

export interface ViewOptions {
  /** Fan-outs with more members than this are collapsed unless expanded. */
  threshold?: number;
  /** Fan-out keys the user expanded. */
  expanded?: ReadonlySet<string>;
  /** Beyond this many drawn nodes, the biggest remaining fan-outs are collapsed too. */
  maxNodes?: number;
  showPlumbing?: boolean;
}

interface FanCandidate {
  key: string;
  members: string[];
  groupId: string | null;
  /** Spawned siblings: the parent whose children they are. */
  parentId?: string | null;
  /** Set on a slice of an expanded fan-out too big to draw member by member. */
  range?: [number, number];
}

export const DEFAULT_THRESHOLD = 25;
export const DEFAULT_MAX_NODES = 400;
/** An expanded fan-out bigger than this opens into slices of this size, each expandable in turn:
 * ELK's layered layout slows down sharply past a few hundred nodes in one layer. */
export const CHUNK = 100;
/** Brackets with more members than this are packed into a grid instead of one tall column. */
export const PACK_OVER = 8;
const MIN_FAN = 4;

export function groupFanKey(groupId: string): string {
  return `fan:g:${groupId}`;
}

function fanCandidates(nodes: WorkflowNode[], wf: WorkflowDetail): FanCandidate[] {
  const out: FanCandidate[] = [];
  const inGroup = new Set<string>();
  for (const g of wf.groups) {
    for (const m of g.members) inGroup.add(m);
    if (g.members.length >= MIN_FAN) out.push({ key: groupFanKey(g.id), members: [...g.members], groupId: g.id });
  }
  // Spawned siblings: many children of one parent with the same name, outside any group.
  const spawned = new Map<string, { parent: string; members: string[] }>();
  for (const n of nodes) {
    if (!n.parent_id || inGroup.has(n.id)) continue;
    const k = `fan:s:${n.parent_id}:${n.name ?? '?'}`;
    const found = spawned.get(k);
    if (found) found.members.push(n.id);
    else spawned.set(k, { parent: n.parent_id, members: [n.id] });
  }
  for (const [key, { parent, members }] of spawned) {
    if (members.length >= MIN_FAN) out.push({ key, members, groupId: null, parentId: parent });
  }
  return out;
}

export function buildViewGraph(wf: WorkflowDetail, opts: ViewOptions = {}): ViewGraph {
  const threshold = opts.threshold ?? DEFAULT_THRESHOLD;
  const maxNodes = opts.maxNodes ?? DEFAULT_MAX_NODES;
  const expanded = opts.expanded ?? new Set<string>();
  const nodes = opts.showPlumbing ? wf.nodes : wf.nodes.filter((n) => !n.plumbing);
  const byId = new Map(nodes.map((n) => [n.id, n]));

  // Decide which fan-outs to collapse: the big ones, then the biggest others until the graph fits.
  const candidates = fanCandidates(nodes, wf)
    .map((c) => ({ ...c, members: c.members.filter((m) => byId.has(m)) }))
    .filter((c) => c.members.length >= MIN_FAN)
    .sort((a, b) => b.members.length - a.members.length || a.key.localeCompare(b.key));
  const collapsed: FanCandidate[] = [];
  const taken = new Set<string>();
  let visible = nodes.length;
  const collapse = (c: FanCandidate) => {
    collapsed.push(c);
    for (const m of c.members) taken.add(m);
    visible -= c.members.length - 1;
  };
  const untaken = (c: FanCandidate): FanCandidate => ({ ...c, members: c.members.filter((m) => !taken.has(m)) });
  // Expanded fan-outs too big to draw open into slices.
  for (const c of candidates) {
    if (!expanded.has(c.key) || c.members.length <= CHUNK) continue;
    for (let i = 0; i < c.members.length; i += CHUNK) {
      const key = `${c.key}~${i / CHUNK}`;
      const slice = c.members.slice(i, i + CHUNK).filter((m) => !taken.has(m));
      if (!expanded.has(key) && slice.length) collapse({ key, members: slice, groupId: c.groupId, range: [i, i + slice.length - 1] });
    }
  }
  // Big fan-outs, innermost first: a group nested in a bigger one (a chord inside a group of chords)
  // collapses on its own, and the outer one then only gathers what is left.
  for (const c of [...candidates].reverse()) {
    if (expanded.has(c.key)) continue;
    const rest = untaken(c);
    if (rest.members.length >= MIN_FAN && rest.members.length > threshold) collapse(rest);
  }
  // Still too many nodes: collapse the biggest remaining fan-outs until the graph fits.
  for (const c of candidates) {
    if (visible <= maxNodes) break;
    if (expanded.has(c.key)) continue;
    const rest = untaken(c);
    if (rest.members.length >= MIN_FAN) collapse(rest);
  }

  const viewIdOf = new Map<string, string>();
  const out: ViewNode[] = [];
  const fanOfGroup = new Map<string, string>();
  for (const c of collapsed) {
    const counts: Record<string, number> = {};
    for (const m of c.members) {
      const s = byId.get(m)?.state ?? 'PENDING';
      counts[s] = (counts[s] ?? 0) + 1;
      viewIdOf.set(m, c.key);
    }
    const names = new Set(c.members.map((m) => byId.get(m)?.name ?? '?'));
    const first = c.members[0] ?? null;
    const label = names.size === 1 ? [...names][0] ?? '?' : `${names.size} task names`;
    out.push({
      id: c.key, kind: 'fanout', taskId: first, label: c.range ? `${label} #${c.range[0]}–${c.range[1]}` : label,
      state: rollUp(counts), container: null, members: c.members, counts, memberName: names.size === 1 ? [...names][0] ?? null : null,
      memberCount: c.members.length,
      memberGroup: c.range ? null : c.groupId, memberParent: c.range ? null : c.parentId ?? null,
    });
    if (c.groupId && !c.range) fanOfGroup.set(c.groupId, c.key);
  }

  // Brackets for groups that are drawn member by member.
  const containerOf = new Map<string, string>();
  const containers: ViewContainer[] = [];
  const slicesOf = new Map<string, string[]>();
  const membersOf = new Map(collapsed.map((c) => [c.key, c.members.length]));
  for (const c of collapsed) {
    if (c.range && c.groupId) slicesOf.set(c.groupId, [...(slicesOf.get(c.groupId) ?? []), c.key]);
  }
  // A group may sit inside another (a group of chords): each bracket goes inside the smallest
  // bracket whose tasks include all of its own, and each node into the smallest bracket holding it.
  interface Draft { c: ViewContainer; tasks: Set<string>; items: string[]; callback: string | null }
  const drafts: Draft[] = [];
  for (const g of wf.groups) {
    if (fanOfGroup.has(g.id)) continue;
    const drawn = g.members.filter((m) => byId.has(m) && !taken.has(m));
    const items = [...(slicesOf.get(g.id) ?? []), ...drawn];
    // A bracket around a few leftovers of a group mostly drawn elsewhere would mislead.
    if (items.length < 2 || (drawn.length < g.members.length / 2 && !slicesOf.has(g.id))) continue;
    const tasks = new Set(g.members.filter((m) => byId.has(m)));
    const taskCount = items.reduce((sum, child) => sum + (membersOf.get(child) ?? 1), 0);
    const c: ViewContainer = {
      id: `grp:${g.id}`, kind: g.kind === 'chord' ? 'chord' : 'group', groupId: g.id, children: [], taskCount, packed: false, parent: null,
    };
    drafts.push({ c, tasks, items, callback: g.kind === 'chord' ? g.callback : null });
  }
  drafts.sort((a, b) => a.tasks.size - b.tasks.size || a.c.id.localeCompare(b.c.id));
  const covers = (outer: Draft, ids: Iterable<string>) => {
    for (const id of ids) if (!outer.tasks.has(id)) return false;
    return true;
  };
  drafts.forEach((d, i) => {
    // Inside the bracket holding all its tasks, or (when a group lists only its chords' callbacks)
    // the one holding its callback.
    const parent =
      drafts.slice(i + 1).find((o) => o.tasks.size > d.tasks.size && covers(o, d.tasks)) ??
      (d.callback ? drafts.find((o) => o !== d && o.callback !== d.callback && o.tasks.has(d.callback ?? '')) : undefined);
    if (parent) {
      for (const t of d.tasks) parent.tasks.add(t);
      d.c.parent = parent.c.id;
      // The outer bracket counts every task inside it, the nested chord's included.
      parent.c.taskCount = Math.max(parent.c.taskCount, parent.tasks.size);
    }
  });
  const byContainer = new Map(drafts.map((d) => [d.c.id, d]));
  for (const d of drafts) {
    for (const item of d.items) {
      // Slices belong to their own group's bracket; a task to the smallest bracket holding it.
      const own = membersOf.has(item) ? d : drafts.find((o) => o.tasks.has(item)) ?? d;
      if (!containerOf.has(item)) containerOf.set(item, own.c.id);
    }
  }
  for (const [item, id] of containerOf) byContainer.get(id)?.c.children.push(item);
  for (const d of drafts) {
    if (d.c.parent) byContainer.get(d.c.parent)?.c.children.push(d.c.id);
  }
  for (const d of drafts) {
    const nested = d.c.children.some((ch) => byContainer.has(ch));
    d.c.packed = !nested && d.c.children.length > PACK_OVER;
    containers.push(d.c);
  }
  // Parents before children: React Flow and ELK both need a bracket before what it holds.
  const depth = (c: ViewContainer): number => (c.parent ? 1 + depth(byContainer.get(c.parent)?.c ?? { ...c, parent: null }) : 0);
  containers.sort((a, b) => depth(a) - depth(b));
  // A collapsed group inside a drawn bracket (a big chord inside a group of chords) sits in it.
  for (const c of collapsed) {
    if (c.range || containerOf.has(c.key)) continue;
    const holder = drafts.find((o) => covers(o, c.members));
    if (holder) {
      containerOf.set(c.key, holder.c.id);
      holder.c.children.push(c.key);
    }
  }
  for (const n of out) if (n.kind === 'fanout') n.container = containerOf.get(n.id) ?? null;

  for (const n of nodes) {
    if (taken.has(n.id)) continue;
    viewIdOf.set(n.id, n.id);
    if (n.collapsed) {
      // The server drew many siblings as this one node (its id is no task id).
      const c = n.collapsed;
      const counts = Object.fromEntries(Object.entries(c.counts).filter(([, k]) => k > 0));
      for (const m of c.member_ids) if (!byId.has(m)) viewIdOf.set(m, n.id);
      out.push({
        id: n.id, kind: 'fanout', taskId: c.member_ids[0] ?? null, label: n.name ?? `${c.count} tasks`, state: rollUp(counts),
        container: containerOf.get(n.id) ?? null, members: c.member_ids, counts, memberName: n.name, memberCount: c.count, serverCollapsed: true,
        memberGroup: c.group_id ?? null, memberParent: c.group_id ? null : c.parent_id ?? null,
      });
      continue;
    }
    out.push({
      id: n.id, kind: 'task', taskId: n.id, label: n.name ?? n.id, state: n.state,
      container: containerOf.get(n.id) ?? null,
    });
  }

  // Edges, remapped onto collapsed nodes and de-duplicated; chord edges go through a join node.
  const edges = new Map<string, ViewEdge>();
  const addEdge = (source: string | undefined, target: string | undefined, kind: string) => {
    if (!source || !target || source === target) return;
    const id = `${source}>${target}:${kind}`;
    if (!edges.has(id)) edges.set(id, { id, source, target, kind });
  };
  const chordCallbacks = new Map<string, string>();
  for (const g of wf.groups) {
    if (g.kind !== 'chord' || !g.callback || !byId.has(g.callback)) continue;
    chordCallbacks.set(g.callback, g.id);
  }
  const joinSources = new Map<string, Set<string>>();
  for (const e of wf.edges) {
    if (!byId.has(e.source) || !byId.has(e.target)) continue;
    const chordId = e.kind === 'chord' ? chordCallbacks.get(e.target) : undefined;
    if (chordId !== undefined) {
      const set = joinSources.get(chordId) ?? new Set<string>();
      set.add(e.source);
      joinSources.set(chordId, set);
      continue;
    }
    addEdge(viewIdOf.get(e.source), viewIdOf.get(e.target), e.kind);
  }
  for (const g of wf.groups) {
    if (g.kind !== 'chord' || !g.callback || !byId.has(g.callback)) continue;
    const joinId = `join:${g.id}`;
    const members = g.members.filter((m) => byId.has(m));
    const done = members.filter((m) => byId.get(m)?.state === 'SUCCESS').length;
    const callback = byId.get(g.callback);
    // The join sits where its chord does: inside the bracket holding the chord's bracket (or fan-out).
    const chordBox = containers.find((c) => c.groupId === g.id);
    const joinIn = chordBox ? chordBox.parent : (containerOf.get(fanOfGroup.get(g.id) ?? '') ?? null);
    out.push({
      id: joinId, kind: 'join', taskId: null, label: 'chord', state: done === members.length ? 'SUCCESS' : 'PENDING',
      container: joinIn, done, total: members.length, callbackName: callback?.name ?? null,
    });
    const sources = joinSources.get(g.id) ?? new Set(members);
    for (const s of sources) addEdge(viewIdOf.get(s), joinId, 'chord');
    addEdge(joinId, viewIdOf.get(g.callback), 'chord');
  }

  // A packed bracket stands for its members towards the outside: one edge instead of one per member.
  const packedOf = new Map<string, string>();
  for (const c of containers) if (c.packed) for (const m of c.children) packedOf.set(m, c.id);
  const edgeList: ViewEdge[] = [];
  const seen = new Set<string>();
  for (const e of edges.values()) {
    const ps = packedOf.get(e.source);
    const pt = packedOf.get(e.target);
    const source = ps && ps !== pt ? ps : e.source;
    const target = pt && pt !== ps ? pt : e.target;
    const id = `${source}>${target}:${e.kind}`;
    if (source === target || seen.has(id)) continue;
    seen.add(id);
    edgeList.push(source === e.source && target === e.target ? e : { id, source, target, kind: e.kind });
  }
  const structureKey = hash(
    out.map((n) => `${n.id}@${n.container ?? ''}`).join('|') + '#' + edgeList.map((e) => e.id).join('|') +
      '#' + containers.map((c) => `${c.id}:${c.packed ? 'p' : 'c'}:${c.parent ?? ''}`).join('|'),
  );
  return { nodes: out, edges: edgeList, containers, viewIdOf, structureKey };
}

/** FNV-1a, 32 bit, as hex; collisions only cost a re-layout. */
export function hash(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16) + ':' + s.length.toString(36);
}

/** A fan-out's label: "×200 · 3 failed". */
export function fanoutSummary(counts: Record<string, number>): string {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const failed = (counts.FAILURE ?? 0) + (counts.LOST ?? 0) + (counts.REVOKED ?? 0) + (counts.REJECTED ?? 0);
  const running = (counts.STARTED ?? 0) + (counts.RETRY ?? 0) + (counts.RECEIVED ?? 0) + (counts.PENDING ?? 0);
  const parts = [`×${total}`];
  if (failed) parts.push(`${failed} failed`);
  if (running) parts.push(`${running} running`);
  return parts.join(' · ');
}

/** Failed nodes first: what the graph scrolls to when it opens. */
export function failedViewIds(view: ViewGraph): string[] {
  return view.nodes
    .filter((n) => n.kind !== 'join' && ['FAILURE', 'LOST', 'REVOKED', 'REJECTED'].includes(n.state))
    .map((n) => n.id);
}
