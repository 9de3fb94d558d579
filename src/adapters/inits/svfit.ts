// SVFit (Sun et al. 2024, "SVFit: Parameter-Efficient Fine-Tuning of Large Pre-Trained Models
// Using Singular Values"): W = U·Σ·Vᵀ, and only the top r singular values train, U_r and V_r
// frozen — r parameters per module. Here B = U_r and A = V_rᵀ stay frozen and a diagonal core C
// between them (src/train/core.ts) trains from zero, so ΔW = s·U_r·C·V_rᵀ shifts σ₁…σ_r by s·C_jj:
// the paper's update, with the output unchanged at step 0 and no residual copy of W. The export
// is the plain LoRA B·C, A, exactly.
import type { Gpu } from '../../gpu/device.ts';
import { run } from '../../gpu/dispatch.ts';
import { releaseTensor, type Tensor } from '../../gpu/tensor.ts';
import { columns, transpose } from '../../linalg/cpu/dense.ts';
import { readMat, uploadMat } from '../../linalg/host.ts';
import { exactSvd } from '../../linalg/svd.ts';
import { asF32 } from '../../linalg/widen.ts';
import type { Factors, FactorsJob } from '../inits.ts';

/** B = U_r, A = V_rᵀ and σ₁…σ_r of the top r singular triplets of an f32 W (SVFit's, SORSA's). */
export async function topSingularTriplets(
  gpu: Gpu,
  weight: Tensor,
  rank: number,
): Promise<Factors & { s: Float64Array }> {
  const svd = await exactSvd(gpu, weight);
  try {
    const u = columns(await readMat(gpu, svd.u), 0, rank);
    const v = columns(await readMat(gpu, svd.v), 0, rank);
    return { a: uploadMat(gpu, transpose(v)), b: uploadMat(gpu, u), s: svd.s.slice(0, rank) };
  } finally {
    releaseTensor(gpu, svd.u, svd.v);
  }
}

/** B = U_r, A = V_rᵀ of W (read in f32, whatever it is stored in). */
export async function svfitFactors({ gpu, module, weight }: FactorsJob<'none'>): Promise<Factors> {
  const w = await run(gpu, (b) => asF32(b, weight));
  try {
    const { a, b } = await topSingularTriplets(gpu, w, module.rank);
    return { a, b };
  } finally {
    releaseTensor(gpu, w);
  }
}
