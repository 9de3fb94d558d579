// EVA (Paischer et al. 2024): A = the top right-singular vectors of a module's inputs (the top
// eigenvectors of Σxᵀx, from src/train/statistics.ts), B = 0; ranks redistributed over modules by
// explained variance.
import type { Gpu } from '../../gpu/device.ts';
import { readF32 } from '../../gpu/readback.ts';
import { releaseTensor, type Tensor } from '../../gpu/tensor.ts';
import { randomizedSvd } from '../../linalg/svd.ts';
import { scaling, type AdaptedModule } from '../config.ts';
import type { Factors } from '../inits.ts';
import { withZeroB } from './random.ts';

/** EVA's candidate components per module: ρ·r of them compete for the rank budget. */
export const EVA_RHO = 2;
/** Top eigenvectors (rows, q × in) and eigenvalues of a PSD covariance, with its trace. */
export interface Components {
  vectors: Float32Array;
  values: Float64Array;
  trace: number;
}

/** The top `count` eigenvectors and eigenvalues (EVA checks them after every batch). */
export async function topComponents(
  gpu: Gpu,
  covariance: Tensor,
  count: number,
  seed: number,
): Promise<Omit<Components, 'trace'>> {
  const n = covariance.shape[0];
  const q = Math.min(count, n);
  const svd = await randomizedSvd(gpu, covariance, { rank: q, oversample: 10, niter: 4, seed });
  try {
    const v = await readF32(gpu, svd.v); // n × q
    const vectors = new Float32Array(q * n);
    for (let j = 0; j < q; j++) for (let i = 0; i < n; i++) vectors[j * n + i] = v[i * q + j];
    return { vectors, values: svd.s };
  } finally {
    releaseTensor(gpu, svd.u, svd.v);
  }
}

/** tr(C): read once, when the components have settled (explained variance = λ / tr C). */
export async function covarianceTrace(gpu: Gpu, covariance: Tensor): Promise<number> {
  const n = covariance.shape[0];
  const c = await readF32(gpu, covariance);
  let trace = 0;
  for (let i = 0; i < n; i++) trace += c[i * n + i];
  return trace;
}

/**
 * EVA's rank redistribution: the budget Σ rₘ goes to the components with the largest explained
 * variance ratio λⱼ/tr(C) over all modules (each module keeps at least its first component, so
 * none disappears from the adapter). alpha follows the rank so the scaling is unchanged (PEFT's
 * adjust_scaling_factors).
 */
export function evaRanks(
  modules: readonly AdaptedModule[],
  components: ReadonlyMap<string, Components>,
  rslora: boolean,
): AdaptedModule[] {
  const budget = modules.reduce((n, m) => n + m.rank, 0);
  const ranks = new Map(modules.map((m) => [m.path, 1]));
  const candidates = modules.flatMap((m) => {
    const c = components.get(m.path)!;
    return Array.from(c.values.subarray(1), (value) => ({ path: m.path, ratio: value / c.trace }));
  });
  candidates.sort((x, y) => y.ratio - x.ratio);
  for (const { path } of candidates.slice(0, budget - modules.length))
    ranks.set(path, ranks.get(path)! + 1);
  return modules.map((m) => {
    const rank = ranks.get(m.path)!;
    const alpha = rslora ? m.alpha * Math.sqrt(rank / m.rank) : (m.alpha * rank) / m.rank;
    return { ...m, rank, alpha, scale: scaling(alpha, rank, rslora) };
  });
}

/** EVA: A = the module's top components, B = 0 (the output is unchanged at step 0). */
export function evaFactors(gpu: Gpu, m: AdaptedModule, c: Components): Factors {
  return withZeroB(gpu, c.vectors.slice(0, m.rank * m.in), m);
}
