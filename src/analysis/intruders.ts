// Intruder dimensions (Shuttleworth et al. 2024, "LoRA vs Full Fine-tuning: An Illusion of
// Equivalence", Algorithm 1): of the top k left singular vectors of a fine-tuned weight W_t, those
// whose cosine similarity with every left singular vector of the pre-trained W₀ stays below a
// threshold ε. Full fine-tuning rotates W₀'s own directions a little; LoRA tends to add new
// high-ranking directions, and the paper ties those to forgetting the pre-training distribution.
// Signs of singular vectors are arbitrary, so similarities are absolute values.
import type { PeftAdapter } from '../adapters/peft-read.ts';
import { variantEntry } from '../adapters/variants.ts';
import type { Gpu } from '../gpu/device.ts';
import { run } from '../gpu/dispatch.ts';
import { readF32 } from '../gpu/readback.ts';
import { releaseTensor, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import { mat, multiply, transpose, type Mat } from '../linalg/cpu/dense.ts';
import { jacobiSvd } from '../linalg/cpu/svd.ts';
import { matmul } from '../linalg/matmul.ts';
import { exactSvd } from '../linalg/svd.ts';
import { asF32 } from '../linalg/widen.ts';
import type { Transformer } from '../model/transformer.ts';
import {
  checkIntruderSettings,
  INTRUDER_DEFAULTS,
  type Intrusion,
  type IntruderSettings,
  type ModuleIntrusion,
} from './intruder-settings.ts';

export { INTRUDER_DEFAULTS, type Intrusion, type IntruderSettings, type ModuleIntrusion };

function fromSimilarities(similarities: number[], threshold: number): Intrusion {
  return { count: similarities.filter((s) => s < threshold).length, similarities };
}

/** Best |uᵢᵀ·u₀ⱼ| over j for each row i of the k × p similarity matrix. */
function bestMatches(similarity: ArrayLike<number>, k: number, p: number): number[] {
  return Array.from({ length: k }, (_, i) => {
    let best = 0;
    for (let j = 0; j < p; j++) best = Math.max(best, Math.abs(similarity[i * p + j]));
    return best;
  });
}

/** The CPU reference, in f64 (Jacobi SVDs). */
export function intrusionCpu(w0: Mat, wt: Mat, settings: IntruderSettings): Intrusion {
  checkIntruderSettings(settings);
  const u0 = jacobiSvd(w0).u;
  const ut = jacobiSvd(wt).u;
  const k = Math.min(settings.k, ut.cols);
  const top = mat(
    ut.rows,
    k,
    Array.from({ length: ut.rows * k }, (_, i) => ut.data[Math.floor(i / k) * ut.cols + (i % k)]),
  );
  const similarity = multiply(transpose(top), u0);
  return fromSimilarities(bestMatches(similarity.data, k, u0.cols), settings.threshold);
}

/** Intruders of W_t against W₀, both f32 [out × in] on the GPU (exact SVDs: min side ≤ 1024). */
export async function intrusion(
  gpu: Gpu,
  w0: Tensor,
  wt: Tensor,
  settings: IntruderSettings,
): Promise<Intrusion> {
  checkIntruderSettings(settings);
  const base = await exactSvd(gpu, w0);
  releaseTensor(gpu, base.v);
  try {
    const tuned = await exactSvd(gpu, wt);
    releaseTensor(gpu, tuned.v);
    try {
      const p = base.u.shape[1];
      const k = Math.min(settings.k, tuned.u.shape[1]);
      // U_tᵀ·U₀ for all of U_t, then its first k rows: the top k by singular value.
      const similarity = await run(gpu, (b) => matmul(b, tuned.u, base.u, { transA: true }));
      try {
        const values = await readF32(gpu, similarity);
        return fromSimilarities(bestMatches(values, k, p), settings.threshold);
      } finally {
        releaseTensor(gpu, similarity);
      }
    } finally {
      releaseTensor(gpu, tuned.u);
    }
  } finally {
    releaseTensor(gpu, base.u);
  }
}

/** The adapter's linear modules, once its variant gives ΔW from the factors alone. */
function measuredModules(adapter: PeftAdapter) {
  const { deltaFromFactors, shortName } = variantEntry(adapter.details.variant);
  if (deltaFromFactors !== true)
    throw new RangeError(
      `intruder dimensions need ΔW from the factors, and ${adapter.name} is a ${shortName} adapter, whose ${deltaFromFactors.refused}`,
    );
  return [...adapter.modules].filter(([, m]) => !m.embedding);
}

/** The same from host weights [out × in] in f64, where there is no GPU. */
export function adapterIntrusionsCpu(
  weights: ReadonlyMap<string, { shape: number[]; data: Float32Array }>,
  adapter: PeftAdapter,
  settings: IntruderSettings = INTRUDER_DEFAULTS,
): ModuleIntrusion[] {
  return measuredModules(adapter).map(([path, m]) => {
    const w = weights.get(`${path}.weight`);
    if (!w) throw new RangeError(`${path}: the model has no such weight`);
    const [rows, cols] = w.shape;
    if (m.b.length !== rows * m.rank || m.a.length !== cols * m.rank)
      throw new RangeError(
        `${path}: the adapter's factors do not fit the model's ${rows}×${cols} weight`,
      );
    const delta = multiply(mat(rows, m.rank, m.b), mat(m.rank, cols, m.a));
    const wt = mat(
      rows,
      cols,
      Array.from(w.data, (v, i) => v + m.scale * delta.data[i]),
    );
    return { path, ...intrusionCpu(mat(rows, cols, w.data), wt, settings) };
  });
}

/**
 * Every linear module of an adapter applied at weight 1 (W_t = W₀ + s·B·A) against the model's
 * own weights. Plain LoRA only: where ΔW depends on the base (DoRA) the variant says why not.
 */
export async function adapterIntrusions(
  gpu: Gpu,
  base: Transformer,
  adapter: PeftAdapter,
  settings: IntruderSettings = INTRUDER_DEFAULTS,
  onModule?: (done: number, total: number) => void,
): Promise<ModuleIntrusion[]> {
  const modules = measuredModules(adapter);
  const out: ModuleIntrusion[] = [];
  for (const [i, [path, m]] of modules.entries()) {
    onModule?.(i, modules.length);
    const weight = base.weight(`${path}.weight`);
    const [rows, cols] = weight.shape;
    if (m.b.length !== rows * m.rank || m.a.length !== cols * m.rank)
      throw new RangeError(
        `${path}: the adapter's factors do not fit the model's ${rows}×${cols} weight`,
      );
    const a = uploadTensor(gpu, m.a, [m.rank, cols], 'f32', `${path} A`);
    const b = uploadTensor(gpu, m.b, [rows, m.rank], 'f32', `${path} B`);
    const w0 = await run(gpu, (batch) => asF32(batch, weight));
    const wt = await run(gpu, (batch) => asF32(batch, w0));
    try {
      await run(gpu, (batch) => matmul(batch, b, a, { alpha: m.scale, beta: 1, into: wt }));
      out.push({ path, ...(await intrusion(gpu, w0, wt, settings)) });
    } finally {
      releaseTensor(gpu, a, b, w0, wt);
    }
  }
  onModule?.(modules.length, modules.length);
  return out;
}
