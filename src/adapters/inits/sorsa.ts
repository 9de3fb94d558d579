// SORSA (Cao & Song 2024, "SORSA: Singular Values and Orthonormal Regularized Singular Vectors
// Adaptation of Large Language Models"): W = U·diag(S)·Vᵀ; the principal part U_r·diag(S_r)·V_rᵀ
// trains — U_r, S_r and V_rᵀ all three — against the frozen residual W − U_r·diag(S_r)·V_rᵀ (as
// PiSSA), while a regulariser keeps U_r's columns and V_rᵀ's rows orthonormal
// (src/train/orthonormal.ts). Here B = U_r, A = V_rᵀ and the diagonal core between them
// (src/train/core.ts) starts at S_r / s, so the term s·B·C·A is the principal part exactly. The
// export is the plain LoRA B·C, A for the residual, converted for the original base like PiSSA's.
import { releaseTensor } from '../../gpu/tensor.ts';
import { columns, transpose } from '../../linalg/cpu/dense.ts';
import { readMat, uploadMat } from '../../linalg/host.ts';
import { exactSvd } from '../../linalg/svd.ts';
import type { Factors, FactorsJob } from '../inits.ts';

/** B = U_r, A = V_rᵀ and the core diag(S_r / s) of W's top r singular triplets (W in f32). */
export async function sorsaFactors({ gpu, module, weight }: FactorsJob<'none'>): Promise<Factors> {
  const { rank } = module;
  const svd = await exactSvd(gpu, weight);
  try {
    const u = columns(await readMat(gpu, svd.u), 0, rank);
    const v = columns(await readMat(gpu, svd.v), 0, rank);
    const core = new Float32Array(rank * rank);
    for (let j = 0; j < rank; j++) core[j * rank + j] = svd.s[j] / module.scale;
    return { a: uploadMat(gpu, transpose(v)), b: uploadMat(gpu, u), core };
  } finally {
    releaseTensor(gpu, svd.u, svd.v);
  }
}
