// The merge demonstration of docs/merging.md: two adapters trained on stories260K in two
// invented styles (Zimmy, Snorp), merged by each method, each merge measured by the merge
// report on held-out stories of both styles. Real training, real merges, real losses.
import type { PeftAdapter } from '../adapters/peft-read.ts';
import type { Gpu } from '../gpu/device.ts';
import type { ModelConfig } from '../model/config.ts';
import type { GpuModel } from '../model/forward.ts';
import type { TextTokenizer } from '../model/tokenizer.ts';
import { takesBasis } from '../adapters/inits.ts';
import { trainStyleAdapter, type StyleTraining } from './style-adapter.ts';
import { SNORP_STYLE, ZIMMY_STYLE } from './style-corpus.ts';
import { mergeAdapters } from '../merge/merge.ts';
import {
  evalSequences,
  gpuEvaluator,
  mergeReport,
  peftAdapterOf,
  weightSweep,
  type ReportSource,
} from '../merge/report.ts';
import type { MergeSpec } from '../merge/spec.ts';
import { gpuCompute } from '../merge/compute.ts';

/** What each row merges: the method with its parameters, both adapters at the given weights. */
export const DEMO_MERGES: {
  label: string;
  spec: Omit<MergeSpec, 'adapters'>;
  weights: [number, number];
}[] = [
  { label: 'cat (= task arithmetic, w = 1)', spec: { method: 'cat' }, weights: [1, 1] },
  {
    label: 'task_arithmetic, w = 0.75',
    spec: { method: 'task_arithmetic' },
    weights: [0.75, 0.75],
  },
  { label: 'svd, rank 8', spec: { method: 'svd', rank: 8 }, weights: [1, 1] },
  { label: 'linear (PEFT, approximate)', spec: { method: 'linear' }, weights: [1, 1] },
  {
    label: 'ties_svd, d = 0.5 (PEFT count)',
    spec: { method: 'ties_svd', density: 0.5, rank: 16 },
    weights: [1, 1],
  },
  {
    label: 'ties_svd, d = 0.5 (mergekit weights)',
    spec: { method: 'ties_svd', density: 0.5, tiesDivisor: 'weights', rank: 16 },
    weights: [1, 1],
  },
  {
    label: 'dare_linear_svd, d = 0.5',
    spec: { method: 'dare_linear_svd', density: 0.5, rank: 16 },
    weights: [1, 1],
  },
  {
    label: 'dare_ties_svd, d = 0.5',
    spec: { method: 'dare_ties_svd', density: 0.5, rank: 16 },
    weights: [1, 1],
  },
  {
    label: 'magnitude_prune_svd, d = 0.5',
    spec: { method: 'magnitude_prune_svd', density: 0.5, rank: 16 },
    weights: [1, 1],
  },
  {
    label: 'breadcrumbs_svd, d = 0.5',
    spec: { method: 'breadcrumbs_svd', density: 0.5, rank: 16 },
    weights: [1, 1],
  },
  {
    label: 'della_svd, d = 0.5',
    spec: { method: 'della_svd', density: 0.5, rank: 16 },
    weights: [1, 1],
  },
  { label: 'slerp, t = 0.5', spec: { method: 'slerp', t: 0.5 }, weights: [1, 1] },
  { label: 'lora_lego, rank 8', spec: { method: 'lora_lego', rank: 8 }, weights: [1, 1] },
  { label: 'opcm', spec: { method: 'opcm' }, weights: [1, 1] },
];

export interface DemoRow {
  label: string;
  /** Loss on each style's held-out text, by style name. */
  losses: Record<string, number>;
  /** Share of each style's improvement the merge keeps. */
  kept: Record<string, number | null>;
  mergeMs: number;
}

export interface DemoResult {
  base: Record<string, number>;
  alone: Record<string, number>;
  rows: DemoRow[];
  sweep: { weight: number; losses: Record<string, number> }[];
}

export async function mergeDemo(
  gpu: Gpu,
  model: GpuModel,
  config: ModelConfig,
  tokenizer: TextTokenizer,
  training: StyleTraining,
  log: (line: string) => void = () => undefined,
): Promise<DemoResult> {
  const sources: ReportSource[] = [];
  for (const [slice, style] of [ZIMMY_STYLE, SNORP_STYLE].entries()) {
    log(`training ${style.name} (${training.steps} steps)`);
    // Orthogonal adaptation: one basis, a slice per adapter.
    const basis = training.init && takesBasis(training.init) ? { seed: 0, slice } : undefined;
    const adapter = await trainStyleAdapter(gpu, model, config, tokenizer, style, {
      ...training,
      basis,
    });
    const evalTokens = evalSequences(
      tokenizer,
      style.stories(8, 2),
      'held-out.txt',
      training.seqLen,
    );
    sources.push({ name: style.name, adapter, evalTokens });
  }
  const adapters: PeftAdapter[] = sources.map((s) => s.adapter);
  const evaluate = gpuEvaluator(gpu, model.base);
  const rows: DemoRow[] = [];
  let first: Awaited<ReturnType<typeof mergeReport>> | undefined;
  for (const { label, spec, weights } of DEMO_MERGES) {
    log(`merging: ${label}`);
    const start = performance.now();
    const outcome = await mergeAdapters(gpuCompute(gpu), adapters, {
      ...spec,
      adapters: sources.map((s, i) => ({ id: s.name, weight: weights[i] })),
    });
    const mergeMs = performance.now() - start;
    const report = await mergeReport(evaluate, sources, peftAdapterOf(outcome.adapter, label));
    first ??= report;
    rows.push({
      label,
      losses: Object.fromEntries(report.rows.map((r) => [r.source, r.merged.loss])),
      kept: Object.fromEntries(report.rows.map((r) => [r.source, r.kept])),
      mergeMs,
    });
  }
  log('sweeping the task-arithmetic weight');
  const sweep = await weightSweep(evaluate, sources, [0, 0.25, 0.5, 0.75, 1, 1.25, 1.5]);
  const rowsOf = first!.rows;
  return {
    base: Object.fromEntries(rowsOf.map((r) => [r.source, r.base.loss])),
    alone: Object.fromEntries(rowsOf.map((r) => [r.source, r.adapters[r.source].loss])),
    rows,
    sweep: sweep.map((p) => ({
      weight: p.weight,
      losses: Object.fromEntries(Object.entries(p.losses).map(([k, v]) => [k, v.loss])),
    })),
  };
}

const f3 = (x: number) => x.toFixed(3);
const percent = (x: number | null) => (x === null ? '—' : `${Math.round(100 * x)} %`);

/** The demo as markdown tables, the way docs/merging.md quotes it. */
export function demoTables(result: DemoResult): string {
  const styles = Object.keys(result.base);
  const lines = [
    `| merge | ${styles.map((s) => `loss on ${s}`).join(' | ')} | ${styles.map((s) => `${s} kept`).join(' | ')} | merge time |`,
    `|---|${styles.map(() => '---|').join('')}${styles.map(() => '---|').join('')}---|`,
    `| base model | ${styles.map((s) => f3(result.base[s])).join(' | ')} | ${styles.map(() => '0 %').join(' | ')} | |`,
    ...styles.map(
      (own) =>
        `| ${own} adapter alone | ${styles.map((s) => (s === own ? f3(result.alone[s]) : '')).join(' | ')} | ${styles.map((s) => (s === own ? '100 %' : '')).join(' | ')} | |`,
    ),
    ...result.rows.map(
      (r) =>
        `| ${r.label} | ${styles.map((s) => f3(r.losses[s])).join(' | ')} | ${styles.map((s) => percent(r.kept[s])).join(' | ')} | ${(r.mergeMs / 1000).toFixed(1)} s |`,
    ),
    '',
    `| weight w (both) | ${result.sweep.map((p) => p.weight).join(' | ')} |`,
    `|---|${result.sweep.map(() => '---|').join('')}`,
    ...styles.map(
      (s) => `| loss on ${s} | ${result.sweep.map((p) => f3(p.losses[s])).join(' | ')} |`,
    ),
  ];
  return lines.join('\n');
}
