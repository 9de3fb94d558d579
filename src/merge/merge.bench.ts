// Merge speed on adapters of Qwen2.5-0.5B's shapes (q_proj 896×896 and v_proj 128×896 in 24
// layers, ranks 6 and 12, like the fixture pair), made in-process so the benchmark needs no files.
// The peer is the same merge on the CPU references (cpu/compute.ts), what the studio runs
// without WebGPU.
import type { AdapterModule, PeftAdapter } from '../adapters/peft-read.ts';
import { PLAIN_VARIANT } from '../adapters/variants.ts';
import type { Gpu } from '../gpu/device.ts';
import { gaussian } from '../linalg/random.ts';
import { cpuCompute } from './cpu/compute.ts';
import { mergeAdapters } from './merge.ts';
import type { MergeMethod } from './spec.ts';
import { gpuCompute, type MergeCompute } from './compute.ts';

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
    variant: PLAIN_VARIANT,
  };
  return { name, baseModel: 'bench', modules, fullWeights: new Map(), details, nonFinite: [] };
}

export interface MergeBenchRow {
  method: MergeMethod;
  modules: number;
  /** The whole merge on the GPU, and on the CPU references (the studio without WebGPU). */
  gpuSeconds: number;
  cpuSeconds: number;
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
  const time = async (compute: MergeCompute, method: MergeMethod) => {
    const start = performance.now();
    const outcome = await mergeAdapters(compute, adapters, spec(method));
    return { seconds: (performance.now() - start) / 1000, modules: outcome.adapter.modules.length };
  };
  const rows: MergeBenchRow[] = [];
  for (const method of METHODS) {
    await time(gpuCompute(gpu), method); // warm-up: pipelines compiled
    const onGpu = await time(gpuCompute(gpu), method);
    const onCpu = await time(cpuCompute, method);
    rows.push({
      method,
      modules: onGpu.modules,
      gpuSeconds: onGpu.seconds,
      cpuSeconds: onCpu.seconds,
    });
  }
  return rows;
}
