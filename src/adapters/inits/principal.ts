// PiSSA (Meng et al. 2024: the top r singular triplets; `pissa_niter_N` by randomized SVD) and
// MiLoRA (Wang et al. 2024: the bottom r): W ≈ U·S·Vᵀ, A = diag(√(S/s))·Vᵀ, B = U·diag(√(S/s)),
// as PEFT's pissa init.
import type { Gpu } from '../../gpu/device.ts';
import { releaseTensor, type Tensor } from '../../gpu/tensor.ts';
import { columns, mat, transpose } from '../../linalg/cpu/dense.ts';
import { readMat, uploadMat } from '../../linalg/host.ts';
import { exactSvd, randomizedSvd, type SvdResult } from '../../linalg/svd.ts';
import type { AdaptedModule } from '../config.ts';
import type { Factors } from '../inits.ts';

export interface Triplets {
  /** Which end of the spectrum the adapter takes. */
  end: 'largest' | 'smallest';
  /** Power iterations of a randomized SVD (seeded); an exact SVD without. */
  niter?: number;
  seed: number;
}

/** A and B from r singular triplets of W (f32). */
export async function principalFactors(
  gpu: Gpu,
  module: AdaptedModule,
  weight: Tensor,
  triplets: Triplets,
): Promise<Factors> {
  const { rank } = module;
  const { niter, seed } = triplets;
  const svd: SvdResult =
    niter === undefined
      ? await exactSvd(gpu, weight)
      : await randomizedSvd(gpu, weight, { rank, niter, seed });
  try {
    const k = svd.s.length;
    const from = triplets.end === 'smallest' ? k - rank : 0;
    const u = columns(await readMat(gpu, svd.u), from, from + rank);
    const v = columns(await readMat(gpu, svd.v), from, from + rank);
    const root = Array.from(svd.s.slice(from, from + rank), (s) => Math.sqrt(s / module.scale));
    const b = mat(
      u.rows,
      rank,
      u.data.map((x, i) => x * root[i % rank]),
    );
    const vt = transpose(v);
    const a = mat(
      rank,
      vt.cols,
      vt.data.map((x, i) => x * root[Math.floor(i / vt.cols)]),
    );
    return { a: uploadMat(gpu, a), b: uploadMat(gpu, b) };
  } finally {
    releaseTensor(gpu, svd.u, svd.v);
  }
}
