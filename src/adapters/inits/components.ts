// The statistic EVA reads (src/train/statistics.ts collects it): the top eigenvectors and
// eigenvalues of each module's input covariance Σxᵀx, i.e. the top right-singular vectors of its
// inputs, with the covariance's trace for the explained variance.
import type { Gpu } from '../../gpu/device.ts';
import { readF32 } from '../../gpu/readback.ts';
import { releaseTensor, type Tensor } from '../../gpu/tensor.ts';
import { randomizedSvd } from '../../linalg/svd.ts';

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
