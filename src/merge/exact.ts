// Exact merges on ΔW = Σ wᵢ·sᵢ·Bᵢ·Aᵢ (../shared/DESIGN.md §5), never on A and B separately:
//   cat: the factors side by side, [w₁s₁B₁ | w₂s₂B₂ | …]·[A₁; A₂; …], rank Σrᵢ — ΔW exactly;
//   svd: the same product brought to rank k by its SVD (QRs of the stacked factors and a small
//        core: no m×n matrix), the best rank-k approximation, with the energy lost reported;
//   linear: PEFT's factor-space combination, for compatibility only (approximate: cross terms).
// Modules are the union of the adapters' (a module an adapter lacks counts as zero); any real
// weights, negative ones included (removing a behaviour). The result has r = lora_alpha = rank
// and no rsLoRA, so its scaling is 1.
import type { ExportAdapter, ExportModule } from '../adapters/peft.ts';
import type { PeftAdapter } from '../adapters/peft-read.ts';
import { recompress } from '../adapters/recompress.ts';
import type { Gpu } from '../gpu/device.ts';

export interface MergeInput {
  adapter: PeftAdapter;
  weight: number;
}

/** `linear` is PEFT's factor-space combination: not exact (see linearModule). */
export type ExactMethod = 'cat' | 'svd' | 'linear';

export interface MergeResult {
  adapter: ExportAdapter;
  /** svd: the share of ‖ΔW‖²_F (summed over modules) the truncation dropped. */
  lostEnergy?: number;
}

/** Refuses what an exact merge of low-rank factors cannot represent, by name. */
function checkMergeable(inputs: readonly MergeInput[]): void {
  if (inputs.length === 0) throw new RangeError('merge: no adapters given');
  const bases = [...new Set(inputs.map((i) => i.adapter.baseModel).filter((b) => b !== null))];
  if (bases.length > 1)
    throw new RangeError(`merge: the adapters are for different base models (${bases.join(', ')})`);
  for (const { adapter, weight } of inputs) {
    if (!Number.isFinite(weight))
      throw new RangeError(`merge: ${adapter.name}'s weight is not a number`);
    if (adapter.details.dora)
      throw new RangeError(
        `merge: ${adapter.name} is a DoRA adapter, whose ΔW is not a low-rank product; merging DoRA is not supported yet`,
      );
    if (adapter.fullWeights.size > 0)
      throw new RangeError(
        `merge: ${adapter.name} replaces whole weights (modules_to_save), which exact merges do not combine yet`,
      );
  }
}

/** [w₁s₁B₁ | …] and [A₁; …] for one module path over the adapters that have it. */
function catModule(path: string, inputs: readonly MergeInput[]): ExportModule {
  const parts = inputs.flatMap(({ adapter, weight }) => {
    const m = adapter.modules.get(path);
    return m ? [{ m, factor: weight * m.scale, name: adapter.name }] : [];
  });
  const out = parts[0].m.b.length / parts[0].m.rank;
  const inputsWidth = parts[0].m.a.length / parts[0].m.rank;
  for (const p of parts) {
    if (p.m.b.length / p.m.rank !== out || p.m.a.length / p.m.rank !== inputsWidth)
      throw new RangeError(`merge: ${path} has different shapes in ${parts[0].name} and ${p.name}`);
  }
  const rank = parts.reduce((r, p) => r + p.m.rank, 0);
  const a = new Float32Array(rank * inputsWidth);
  const b = new Float32Array(out * rank);
  let offset = 0;
  for (const { m, factor } of parts) {
    a.set(m.a, offset * inputsWidth);
    for (let o = 0; o < out; o++)
      for (let j = 0; j < m.rank; j++) b[o * rank + offset + j] = factor * m.b[o * m.rank + j];
    offset += m.rank;
  }
  const layer = Number(/\.(\d+)\./.exec(path)?.[1] ?? 0);
  return { path, layer, rank, alpha: rank, in: inputsWidth, out, a, b };
}

/**
 * PEFT's `linear`: A = Σ sign(wᵢsᵢ)·√|wᵢsᵢ|·Aᵢ and B = Σ √|wᵢsᵢ|·Bᵢ, combined separately, so
 * B·A holds cross terms Bᵢ·Aⱼ (i ≠ j) that no adapter had: approximate, kept for compatibility.
 * Needs equal ranks, as PEFT does.
 */
function linearModule(path: string, inputs: readonly MergeInput[]): ExportModule {
  const parts = inputs.flatMap(({ adapter, weight }) => {
    const m = adapter.modules.get(path);
    return m ? [{ m, factor: weight * m.scale, name: adapter.name }] : [];
  });
  const { rank } = parts[0].m;
  const a = new Float32Array(parts[0].m.a.length);
  const b = new Float32Array(parts[0].m.b.length);
  for (const { m, factor, name } of parts) {
    if (m.rank !== rank || m.a.length !== a.length || m.b.length !== b.length)
      throw new RangeError(
        `merge: linear needs equal ranks and shapes; ${path} differs in ${name}`,
      );
    const root = Math.sqrt(Math.abs(factor));
    const sign = Math.sign(factor);
    m.a.forEach((v, i) => (a[i] += sign * root * v));
    m.b.forEach((v, i) => (b[i] += root * v));
  }
  const layer = Number(/\.(\d+)\./.exec(path)?.[1] ?? 0);
  return { path, layer, rank, alpha: rank, in: a.length / rank, out: b.length / rank, a, b };
}

export async function mergeExact(
  gpu: Gpu,
  inputs: readonly MergeInput[],
  method: ExactMethod,
  rank?: number,
): Promise<MergeResult> {
  checkMergeable(inputs);
  const paths = [...new Set(inputs.flatMap(({ adapter }) => [...adapter.modules.keys()]))];
  const modules = paths.map((path) =>
    method === 'linear' ? linearModule(path, inputs) : catModule(path, inputs),
  );
  const targets = [...new Set(paths.map((p) => p.slice(p.lastIndexOf('.') + 1)))];
  const total = Math.max(...modules.map((m) => m.rank));
  const cat: ExportAdapter = {
    modules,
    rank: total,
    alpha: total,
    rslora: false,
    targets,
    dropout: 0,
    initLoraWeights: true,
    baseModel: inputs.find((i) => i.adapter.baseModel)?.adapter.baseModel ?? '',
    // Without the model, layers 0…max are taken as all of them (layers_to_transform: null);
    // a gap makes the list explicit.
    numLayers: Math.max(...modules.map((m) => m.layer)) + 1,
  };
  if (method !== 'svd') return { adapter: cat };
  const k = rank ?? Math.max(...inputs.map((i) => i.adapter.details.rank));
  const { adapter, totalLostEnergy } = await recompress(gpu, cat, k);
  return { adapter, lostEnergy: totalLostEnergy };
}
