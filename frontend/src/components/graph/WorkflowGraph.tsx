// The workflow graph: React Flow drawing an ELK layout computed in a worker. Layout depends only on the
// structure; task states are merged in at render time.
import {
  Background, Controls, MarkerType, MiniMap, ReactFlow, ReactFlowProvider, useReactFlow,
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

function GraphInner({ wf, view, selectedTask, expanded, onSelectTask, onToggleFan, onLaidOut }: Props) {
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

  const { nodes, edges } = useMemo(() => {
    if (!layout) return { nodes: [] as Node[], edges: [] as Edge[] };
    const boxes = layout.boxes;
    const out: Node[] = [];
    for (const c of view.containers) {
      const b = boxes.get(c.id);
      if (!b) continue;
      const key = groupFanKey(c.groupId);
      out.push({
        id: c.id, type: 'bracket', position: { x: b.x, y: b.y }, width: b.width, height: b.height,
        style: { width: b.width, height: b.height }, selectable: false, draggable: false, zIndex: -1,
        data: { kind: c.kind, count: c.children.length, expandedKey: expanded.has(key) ? key : null, onToggle: onToggleFan } satisfies BracketData,
      });
    }
    for (const n of view.nodes) {
      const b = boxes.get(n.id);
      if (!b) continue;
      const node: Node = {
        id: n.id, type: n.kind, position: { x: b.x, y: b.y }, width: b.width, height: b.height,
        style: { width: b.width, height: b.height }, draggable: false,
        data: { view: n, task: n.taskId ? byId.get(n.taskId) : undefined, selected: n.id === selectedView, onToggle: onToggleFan } satisfies TaskNodeData,
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
  }, [layout, view, byId, selectedView, expanded, onToggleFan]);

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

  if (error) return <ErrorBanner error={error} what="the graph layout" />;
  return (
    <div className="graph" data-laid-out={layout ? 'true' : 'false'} data-node-count={nodes.length}>
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
        }}
        onPaneClick={() => onSelectTask(null)}
      >
        <Background gap={24} size={1} />
        <Controls showInteractive={false} />
        <MiniMap
          pannable
          zoomable
          nodeColor={(n) => {
            if (n.type === 'bracket') return 'transparent';
            const d = n.data as Partial<TaskNodeData>;
            return stateColor(d.task?.state ?? d.view?.state ?? '');
          }}
          nodeStrokeColor={(n) => (n.type === 'bracket' ? stateColor('') : 'transparent')}
        />
      </ReactFlow>
    </div>
  );
}
