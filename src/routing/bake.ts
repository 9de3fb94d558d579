// A routed composition baked into one plain LoRA: each module's gates replaced by their mean over
// a text, ḡ, so that ΔW = s·Σ_e ḡ_e·B_e·A_e — the stacked factors with B's expert blocks scaled,
// a PEFT LoRA of rank R (the experts' ranks summed) any tool loads. Exact for learned scales
// (their gates are constants); for token routers it costs what per-token choice was worth, which
// the caller measures.
import { peftFiles, type ExportAdapter, type ExportModule } from '../adapters/peft.ts';
import { readPeftAdapter, type PeftAdapter } from '../adapters/peft-read.ts';
import { gpuEvaluator } from '../merge/report.ts';
import type { Gpu } from '../gpu/device.ts';
import { readF32 } from '../gpu/readback.ts';
import { releaseTensor, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import { matmul } from '../linalg/matmul.ts';
import { modulePath } from '../model/architecture.ts';
import type { ModelConfig } from '../model/config.ts';
import type { Transformer } from '../model/transformer.ts';
import type { Sequence } from '../train/data.ts';
import { batchLoss, tokenBatch } from '../train/step.ts';
import { blocksOf } from './kernels.ts';
import { scaleGroup, type RoutedAdapter, type RouterState } from './router.ts';
import { validationLoss } from './train.ts';

/**
 * Each routed module's mean gates [E] over the sequences' tokens, by module path; learned scales
 * are their own gates.
 */
export async function meanGates(
  gpu: Gpu,
  base: Transformer,
  routed: RoutedAdapter,
  state: RouterState,
  sequences: readonly Sequence[],
): Promise<Map<string, Float32Array>> {
  if (state.scales.size > 0)
    return new Map(
      state.modules.map((m) => [m.path, state.scales.get(scaleGroup(state.scales, m.layer))!]),
    );
  if (sequences.length === 0)
    throw new RangeError('baking a router needs some text to average its gates over');
  const sums = new Map<string, Tensor>();
  const tensors: Tensor[] = [];
  const view = routed.view(base);
  try {
    for (const m of state.modules) {
      const t = uploadTensor(
        gpu,
        new Float32Array(m.ranks.length),
        [1, m.ranks.length],
        'f32',
        `${m.path} Σ gates`,
      );
      sums.set(m.path, t);
      tensors.push(t);
    }
    let tokens = 0;
    for (const sequence of sequences) {
      const length = sequence.input.length;
      const ones = uploadTensor(gpu, new Float32Array(length).fill(1), [1, length], 'f32', 'ones');
      tensors.push(ones);
      routed.observe((batch, module, gates) => {
        const into = sums.get(module.path);
        if (into) matmul(batch, ones, gates, { into, beta: 1 });
      });
      await batchLoss(gpu, view, tokenBatch([sequence]));
      tokens += length;
    }
    const means = new Map<string, Float32Array>();
    for (const [path, t] of sums)
      means.set(
        path,
        (await readF32(gpu, t)).map((v) => v / tokens),
      );
    return means;
  } finally {
    routed.observe(undefined);
    releaseTensor(gpu, ...tensors);
  }
}

/** The plain LoRA whose ΔW is the routed composition at the given gates, per module. */
export function bakedAdapter(
  state: RouterState,
  gates: ReadonlyMap<string, Float32Array>,
  config: ModelConfig,
  baseModel: string,
): ExportAdapter {
  const modules: ExportModule[] = state.modules.map((m) => {
    const g = gates.get(m.path);
    if (!g || g.length !== m.ranks.length) throw new Error(`${m.path}: no mean gates`);
    const { offsets, experts } = blocksOf(m.ranks);
    const rank = offsets[experts];
    const b = new Float32Array(m.b.length);
    for (let e = 0; e < experts; e++)
      for (let o = 0; o < m.out; o++)
        for (let j = offsets[e]; j < offsets[e + 1]; j++)
          b[o * rank + j] = m.scale * g[e] * m.b[o * rank + j];
    // alpha = rank: PEFT's scaling is 1, everything folded into B.
    return { path: m.path, layer: m.layer, rank, alpha: rank, in: m.in, out: m.out, a: m.a, b };
  });
  // The most common rank is the config's; PEFT's rank_pattern says the others.
  const counts = new Map<number, number>();
  for (const m of modules) counts.set(m.rank, (counts.get(m.rank) ?? 0) + 1);
  const common = [...counts].reduce((a, b) => (b[1] > a[1] ? b : a))[0];
  const { arch } = config;
  const names = new Set(
    state.modules.map(
      (m) =>
        arch.modules.find((spec) => modulePath(arch, m.layer, spec) === m.path)?.name ?? m.path,
    ),
  );
  return {
    modules,
    rank: common,
    alpha: common,
    rslora: false,
    targets: [...names],
    dropout: 0,
    initLoraWeights: true,
    baseModel,
    numLayers: config.numLayers,
  };
}

/**
 * The router baked by its mean gates over `over` (as PEFT files), with the loss on `measure`
 * routed and baked: what the per-token choice was worth.
 */
export async function bakeAndMeasure(
  gpu: Gpu,
  base: Transformer,
  routed: RoutedAdapter,
  over: readonly Sequence[],
  measure: readonly Sequence[],
  baseModel: string,
): Promise<{
  files: Map<string, Uint8Array>;
  adapter: PeftAdapter;
  gates: Map<string, Float32Array>;
  routedLoss: number | null;
  bakedLoss: number | null;
}> {
  const state = await routed.read();
  const gates = await meanGates(gpu, base, routed, state, over);
  const files = peftFiles(bakedAdapter(state, gates, base.config, baseModel));
  const adapter = readPeftAdapter(files, 'baked router');
  const routedLoss = await validationLoss(gpu, routed.view(base), measure, 4);
  const [bakedLoss] = await gpuEvaluator(gpu, base)([{ adapter, weight: 1 }], [measure]);
  return { files, adapter, gates, routedLoss, bakedLoss };
}
