// The workflow graph: React Flow drawing an ELK layout computed in a worker. Layout depends only on the
// structure; task states are merged in at render time.
import {
  Background, ControlButton, Controls, MarkerType, MiniMap, ReactFlow, ReactFlowProvider, useReactFlow,
  type Edge, type Node,
} from '@xyflow/react';
import '@xyflow/react/dist/style.css';
import { useEffect, useMemo, useRef, useState } from 'react';
import type { WorkflowDetail, WorkflowNode } from '../../api/types';
import type { Layout } from '../../domain/elk';
import { failedViewIds, groupFanKey, type ViewGraph } from '../../domain/graph';
import { stateClass } from '../../domain/states';
import { ErrorBanner } from '../common';
import { layoutView } from './layoutClient';
import { nodeTypes, type BracketData, type TaskNodeData } from './nodes';

const SHOW_WHOLE = 40;

interface Props {
  wf: WorkflowDetail;
  view: ViewGraph;
  selectedTask: string | null;
  expanded: ReadonlySet<string>;
  onSelectTask: (id: string | null) => void;
  onToggleFan: (key: string) => void;
  onOpenFan?: (key: string) => void;
  /** Argument digest per task id, for telling same-named siblings apart. */
  digests?: ReadonlyMap<string, string>;
  onLaidOut?: () => void;
}

// SVG fill attributes cannot use CSS variables: resolve the theme's state colours once per call.
function stateColor(state: string): string {
  const v = getComputedStyle(document.documentElement).getPropertyValue(`--st-${stateClass(state)}`).trim();
  return v || '#868e96';
}

export function WorkflowGraph(props: Props) {
  return (
    <ReactFlowProvider>
      <GraphInner {...props} />
    </ReactFlowProvider>
  );
}

function GraphInner({ wf, view, selectedTask, expanded, onSelectTask, onToggleFan, onOpenFan, digests, onLaidOut }: Props) {
  const [showMap, setShowMap] = useState(false);
  const [layout, setLayout] = useState<{ key: string; boxes: Layout } | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    let alive = true;
    layoutView(view).then(
      (boxes) => alive && setLayout({ key: view.structureKey, boxes }),
      (err: unknown) => alive && setError(err),
    );
    return () => {
      alive = false;
    };
  }, [view]);

  const byId = useMemo(() => new Map<string, WorkflowNode>(wf.nodes.map((n) => [n.id, n])), [wf]);
  const selectedView = selectedTask ? view.viewIdOf.get(selectedTask) ?? null : null;
  // Names drawn more than once: those nodes carry an argument digest.
  const sharedNames = useMemo(() => {
    const seen = new Map<string, number>();
    for (const n of view.nodes) if (n.kind === 'task') seen.set(n.label, (seen.get(n.label) ?? 0) + 1);
    return new Set([...seen].filter(([, c]) => c > 1).map(([name]) => name));
  }, [view]);

  const { nodes, edges } = useMemo(() => {
    if (!layout) return { nodes: [] as Node[], edges: [] as Edge[] };
    const boxes = layout.boxes;
    const out: Node[] = [];
    for (const c of view.containers) {
      const b = boxes.get(c.id);
      if (!b) continue;
      const key = groupFanKey(c.groupId);
      const bracket: Node = {
        id: c.id, type: 'bracket', position: { x: b.x, y: b.y }, width: b.width, height: b.height,
        style: { width: b.width, height: b.height }, selectable: false, draggable: false, zIndex: -1,
        data: { kind: c.kind, count: c.taskCount, expandedKey: expanded.has(key) ? key : null, onToggle: onToggleFan } satisfies BracketData,
      };
      // A chord inside a group of chords: positioned relative to its outer bracket.
      if (b.parent) {
        bracket.parentId = b.parent;
        bracket.extent = 'parent';
      }
      out.push(bracket);
    }
    for (const n of view.nodes) {
      const b = boxes.get(n.id);
      if (!b) continue;
      const node: Node = {
        id: n.id, type: n.kind, position: { x: b.x, y: b.y }, width: b.width, height: b.height,
        style: { width: b.width, height: b.height }, draggable: false,
        data: {
          view: n, task: n.taskId ? byId.get(n.taskId) : undefined, selected: n.id === selectedView, onToggle: onToggleFan,
          onOpenFan, workflowId: wf.id, digest: n.kind === 'task' && n.taskId && sharedNames.has(n.label) ? digests?.get(n.taskId) : undefined,
        } satisfies TaskNodeData,
      };
      if (b.parent) {
        node.parentId = b.parent;
        node.extent = 'parent';
      }
      out.push(node);
    }
    const es: Edge[] = view.edges.map((e) => ({
      id: e.id, source: e.source, target: e.target, className: `edge-${e.kind}`, selectable: false,
      markerEnd: { type: MarkerType.ArrowClosed, width: 14, height: 14 },
      animated: false, label: e.kind === 'spawn' || e.kind === 'chain' || e.kind === 'chord' ? undefined : e.kind,
    }));
    return { nodes: out, edges: es };
  }, [layout, view, byId, selectedView, expanded, onToggleFan, onOpenFan, wf.id, digests, sharedNames]);

  const flow = useReactFlow();
  const focusedFor = useRef<string | null>(null);
  // First view of a layout: failed nodes first, else the selected task, else everything.
  useEffect(() => {
    if (!layout || !nodes.length || focusedFor.current === layout.key) return;
    focusedFor.current = layout.key;
    // Small graphs are shown whole (failures are visible anyway); big ones open on what matters.
    const failed = failedViewIds(view);
    const target = view.nodes.length <= SHOW_WHOLE ? [] : selectedView ? [selectedView] : failed.slice(0, 8);
    window.requestAnimationFrame(() => {
      void flow.fitView(target.length ? { nodes: target.map((id) => ({ id })), maxZoom: 1.1, padding: 0.4 } : { padding: 0.1, maxZoom: 1.1 });
      onLaidOut?.();
    });
  }, [layout, nodes.length, view, selectedView, flow, onLaidOut]);

  // The panel opening (or the window narrowing) shrinks the canvas: fit again so nothing drawn is hidden.
  const boxRef = useRef<HTMLDivElement>(null);
  const lastWidth = useRef<number | null>(null);
  useEffect(() => {
    const el = boxRef.current;
    if (!el || !layout) return;
    const ro = new ResizeObserver(() => {
      const w = Math.round(el.clientWidth);
      if (lastWidth.current !== null && Math.abs(w - lastWidth.current) > 8) {
        const small = view.nodes.length <= SHOW_WHOLE;
        void flow.fitView(small || !selectedView ? { padding: 0.1, maxZoom: 1.1 } : { nodes: [{ id: selectedView }], maxZoom: 1.1, padding: 0.4 });
      }
      lastWidth.current = w;
    });
    ro.observe(el);
    return () => ro.disconnect();
  }, [layout, view, selectedView, flow]);

  const onKeyDown = (e: React.KeyboardEvent) => {
    const el = (e.target as HTMLElement).closest<HTMLElement>('.react-flow__node');
    const id = el?.dataset.id;
    if (!id) return;
    const current = nodes.find((n) => n.id === id);
    if (!current) return;
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      const d = current.data as Partial<TaskNodeData>;
      if (current.type === 'task' && d.view?.taskId) onSelectTask(d.view.taskId);
      else if (current.type === 'fanout' && d.view) onToggleFan(d.view.id);
      return;
    }
    const next = neighbour(nodes, current, e.key);
    if (!next) return;
    e.preventDefault();
    const c = centre(nodes, next);
    void flow.setCenter(c.x, c.y, { zoom: Math.max(flow.getZoom(), 0.6), duration: 0 });
    window.requestAnimationFrame(() => {
      boxRef.current?.querySelector<HTMLElement>(`.react-flow__node[data-id="${CSS.escape(next.id)}"]`)?.focus();
    });
  };

  if (error) return <ErrorBanner error={error} what="the graph layout" />;
  return (
    <div
      className="graph"
      ref={boxRef}
      data-laid-out={layout ? 'true' : 'false'}
      data-node-count={nodes.length}
      onKeyDown={onKeyDown}
      role="region"
      aria-label="Workflow graph: Tab to a node, arrow keys to move between nodes, Enter to open"
    >
      {!layout && <div className="loading overlay">Laying out {view.nodes.length} nodes…</div>}
      <ReactFlow
        nodes={nodes}
        edges={edges}
        nodeTypes={nodeTypes}
        nodesConnectable={false}
        nodesDraggable={false}
        elementsSelectable
        onlyRenderVisibleElements={nodes.length > 300}
        minZoom={0.05}
        maxZoom={2}
        onNodeClick={(_, n) => {
          const d = n.data as Partial<TaskNodeData>;
          if (n.type === 'task' && d.view?.taskId) onSelectTask(d.view.taskId);
          else if (n.type === 'fanout' && d.view) onToggleFan(d.view.id);
        }}
        onPaneClick={() => onSelectTask(null)}
      >
        <Background gap={24} size={1} />
        <Controls showInteractive={false}>
          <ControlButton onClick={() => setShowMap((m) => !m)} title={showMap ? 'Hide the map' : 'Show the map'} aria-label={showMap ? 'Hide the map' : 'Show the map'} aria-pressed={showMap}>
            <span aria-hidden="true">▦</span>
          </ControlButton>
        </Controls>
        {/* Off by default: a map drawn over the canvas covers nodes; it is there when asked for. */}
        {showMap && <MiniMap
          pannable
          zoomable
          nodeColor={(n) => {
            if (n.type === 'bracket') return 'transparent';
            const d = n.data as Partial<TaskNodeData>;
            return stateColor(d.task?.state ?? d.view?.state ?? '');
          }}
          nodeStrokeColor={(n) => (n.type === 'bracket' ? stateColor('') : 'transparent')}
        />}
      </ReactFlow>
    </div>
  );
}

/** A node's centre on the canvas (children of a bracket are placed relative to it). */
function centre(nodes: readonly Node[], n: Node): { x: number; y: number } {
  const parent = n.parentId ? nodes.find((p) => p.id === n.parentId) : undefined;
  const ox = parent ? centre(nodes, parent).x - (parent.width ?? 0) / 2 : 0;
  const oy = parent ? centre(nodes, parent).y - (parent.height ?? 0) / 2 : 0;
  return { x: ox + n.position.x + (n.width ?? 0) / 2, y: oy + n.position.y + (n.height ?? 0) / 2 };
}

/** The nearest node in an arrow key's direction, favouring ones straight ahead. */
export function neighbour(nodes: readonly Node[], from: Node, key: string): Node | null {
  const dir = { ArrowRight: [1, 0], ArrowLeft: [-1, 0], ArrowDown: [0, 1], ArrowUp: [0, -1] }[key];
  if (!dir) return null;
  const a = centre(nodes, from);
  let best: Node | null = null;
  let bestScore = Infinity;
  for (const n of nodes) {
    if (n.id === from.id || n.type === 'bracket') continue;
    const b = centre(nodes, n);
    const dx = b.x - a.x;
    const dy = b.y - a.y;
    const ahead = dx * (dir[0] ?? 0) + dy * (dir[1] ?? 0);
    if (ahead <= 1) continue;
    const side = Math.abs(dx * (dir[1] ?? 0)) + Math.abs(dy * (dir[0] ?? 0));
    const score = ahead + 2 * side;
    if (score < bestScore) {
      bestScore = score;
      best = n;
    }
  }
  return best;
}
