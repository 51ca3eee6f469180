// A workflow named by its shape — "chord: score_item ×500 → summarize" — where the API names it after
// its first task only (a chord's first header task says little about the whole).
import type { WorkflowDetail } from '../api/types';
import { shortTaskName } from './args';

function commonName(names: (string | null | undefined)[]): string {
  const counts = new Map<string, number>();
  for (const n of names) counts.set(n ?? '?', (counts.get(n ?? '?') ?? 0) + 1);
  if (counts.size === 1) return shortTaskName([...counts.keys()][0] ?? '?');
  return `${counts.size} tasks`;
}

export function workflowShapeName(wf: WorkflowDetail): string {
  const byId = new Map(wf.nodes.map((n) => [n.id, n]));
  const fallback = wf.name ? shortTaskName(wf.name) : wf.id.slice(0, 8);
  // The biggest group or chord stands for the workflow (nested ones are parts of it).
  const top = [...wf.groups].sort((a, b) => b.members.length - a.members.length)[0];
  if (top) {
    const header = `${commonName(top.members.map((m) => byId.get(m)?.name))} ×${top.members.length}`;
    if (top.kind === 'chord') {
      const cb = top.callback ? byId.get(top.callback)?.name : null;
      return `chord: ${header} → ${cb ? shortTaskName(cb) : 'callback'}`;
    }
    return `group: ${header}`;
  }
  const chain = wf.edges.filter((e) => e.kind === 'chain');
  if (chain.length) {
    // Follow the chain links from the root: a → b → c.
    const next = new Map(chain.map((e) => [e.source, e.target]));
    const steps: string[] = [];
    let cur: string | null | undefined = wf.root_id ?? wf.nodes[0]?.id;
    const seen = new Set<string>();
    while (cur && !seen.has(cur)) {
      seen.add(cur);
      steps.push(shortTaskName(byId.get(cur)?.name ?? '?'));
      cur = next.get(cur);
    }
    if (steps.length > 1) {
      const shown = steps.length > 4 ? [...steps.slice(0, 3), `… (${steps.length} steps)`] : steps;
      return `chain: ${shown.join(' → ')}`;
    }
  }
  return fallback;
}
