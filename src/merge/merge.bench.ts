// Merge speed on adapters of Qwen2.5-0.5B's shapes (q_proj 896×896 and v_proj 128×896 in 24
// layers, ranks 6 and 12, like the fixture pair), made in-process so the benchmark needs no files.
// The peer for the entrywise step is the same computation in plain TypeScript on the CPU (the
// reference implementation), run on the same dense ΔW.
import type { AdapterModule, PeftAdapter } from '../adapters/peft-read.ts';
import type { Gpu } from '../gpu/device.ts';
import { gaussian } from '../linalg/random.ts';
import { mergeEntrywiseCpu } from './cpu/entrywise.ts';
import { mergeAdapters } from './merge.ts';
import type { MergeMethod } from './spec.ts';
import { gpuCompute } from './compute.ts';

const SHAPES = [
  { module: 'self_attn.q_proj', out: 896, in: 896 },
  { module: 'self_attn.v_proj', out: 128, in: 896 },
];
const LAYERS = 24;

function randomAdapter(name: string, rank: number, seed: number): PeftAdapter {
  const modules = new Map<string, AdapterModule>();
  for (let layer = 0; layer < LAYERS; layer++)
    for (const [i, s] of SHAPES.entries()) {
      const salt = seed + 100 * layer + 10 * i;
      modules.set(`model.layers.${layer}.${s.module}`, {
        rank,
        scale: 32 / rank,
        a: gaussian(rank * s.in, salt).map((v) => v / 30),
        b: gaussian(s.out * rank, salt + 1).map((v) => v / 100),
      });
    }
  const details = {
    rank,
    alpha: 32,
    rslora: false,
    modules: modules.size,
    targets: [],
    dora: false,
  };
  return { name, baseModel: 'bench', modules, fullWeights: new Map(), details, nonFinite: [] };
}

/** s·B·A of one module on the CPU, f32 (what the entrywise peer starts from). */
function denseDelta(m: AdapterModule): Float32Array {
  const out = m.b.length / m.rank;
  const width = m.a.length / m.rank;
  const d = new Float32Array(out * width);
  for (let o = 0; o < out; o++)
    for (let j = 0; j < m.rank; j++) {
      const c = m.scale * m.b[o * m.rank + j];
      for (let i = 0; i < width; i++) d[o * width + i] += c * m.a[j * width + i];
    }
  return d;
}

export interface MergeBenchRow {
  method: MergeMethod;
  modules: number;
  seconds: number;
  /** The entrywise step alone in plain TypeScript over all modules (dense methods only). */
  cpuEntrywiseSeconds: number | null;
}

const METHODS: MergeMethod[] = ['cat', 'svd', 'ties_svd', 'dare_ties_svd', 'magnitude_prune_svd'];

export async function benchMerges(gpu: Gpu): Promise<MergeBenchRow[]> {
  const adapters = [randomAdapter('r6', 6, 1), randomAdapter('r12', 12, 2)];
  const spec = (method: MergeMethod) => ({
    method,
    density: 0.3,
    ...(method === 'cat' ? {} : { rank: 12 }),
    adapters: adapters.map((a) => ({ id: a.name, weight: 1 })),
  });
  const compute = gpuCompute(gpu);
  const rows: MergeBenchRow[] = [];
  for (const method of METHODS) {
    await mergeAdapters(compute, adapters, spec(method)); // warm-up: pipelines compiled
    const start = performance.now();
    const outcome = await mergeAdapters(compute, adapters, spec(method));
    const seconds = (performance.now() - start) / 1000;
    rows.push({
      method,
      modules: outcome.adapter.modules.length,
      seconds,
      cpuEntrywiseSeconds: method.endsWith('_svd') ? cpuEntrywise(adapters, method) : null,
    });
  }
  return rows;
}

function cpuEntrywise(adapters: PeftAdapter[], method: MergeMethod): number {
  const sparsify =
    method === 'dare_ties_svd'
      ? ({ kind: 'random', density: 0.3 } as const)
      : ({ kind: 'magnitude', density: 0.3 } as const);
  const consensus =
    method === 'magnitude_prune_svd'
      ? ({ elect: 'none', weighted: false, divisor: 'none' } as const)
      : ({ elect: 'total', weighted: false, divisor: 'count' } as const);
  let seconds = 0;
  for (const path of adapters[0].modules.keys()) {
    const tasks = adapters.map((a, i) => ({
      x: denseDelta(a.modules.get(path)!),
      task: { weight: 1, sparsify, seed: i },
    }));
    const m = adapters[0].modules.get(path)!;
    const start = performance.now();
    mergeEntrywiseCpu(tasks, consensus, m.a.length / m.rank);
    seconds += (performance.now() - start) / 1000;
  }
  return seconds;
}
