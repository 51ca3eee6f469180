// Runs ELK in a Web Worker (a same-origin file, as the CSP requires) and caches layouts on the drawn
// graph's structure, so live state changes never trigger a re-layout.
import ELK from 'elkjs/lib/elk-api.js';
import elkWorkerUrl from 'elkjs/lib/elk-worker.min.js?url';
import type { ElkNode } from 'elkjs/lib/elk-api.js';
import { readLayout, toElkGraph, type ElkShape, type Layout } from '../../domain/elk';
import type { ViewGraph } from '../../domain/graph';

let elk: InstanceType<typeof ELK> | null = null;
const cache = new Map<string, Promise<Layout>>();
const CACHE_MAX = 20;

function engine() {
  elk ??= new ELK({ workerFactory: () => new Worker(elkWorkerUrl) });
  return elk;
}

/** Start the worker (and its 1.6 MB script) while the workflow is still being fetched. */
export function warmLayoutEngine(): void {
  if (elk) return;
  // A tiny layout runs ELK's one-time initialisation while the workflow is still downloading.
  void engine()
    .layout(WARM_UP as ElkNode)
    .catch(() => undefined);
}

const WARM_UP: ElkShape = toElkGraph({
  nodes: [
    { id: 'a', kind: 'task', taskId: 'a', label: 'a', state: 'SUCCESS', container: 'grp:g' },
    { id: 'b', kind: 'task', taskId: 'b', label: 'b', state: 'SUCCESS', container: 'grp:g' },
    { id: 'c', kind: 'join', taskId: null, label: 'c', state: 'SUCCESS', container: null },
  ],
  edges: [
    { id: 'a>c', source: 'a', target: 'c', kind: 'chord' },
    { id: 'b>c', source: 'b', target: 'c', kind: 'chord' },
  ],
  containers: [{ id: 'grp:g', kind: 'chord', groupId: 'g', children: ['a', 'b'], taskCount: 2, packed: false, parent: null }],
  viewIdOf: new Map(),
  structureKey: 'warm-up',
});

export function layoutView(view: ViewGraph): Promise<Layout> {
  const hit = cache.get(view.structureKey);
  if (hit) return hit;
  const p = engine()
    .layout(toElkGraph(view) as ElkNode)
    .then((res) => readLayout(res as unknown as ElkShape));
  p.catch(() => cache.delete(view.structureKey));
  cache.set(view.structureKey, p);
  if (cache.size > CACHE_MAX) {
    const oldest = cache.keys().next().value;
    if (oldest !== undefined) cache.delete(oldest);
  }
  return p;
}
