// SORSA (Cao & Song 2024, "SORSA: Singular Values and Orthonormal Regularized Singular Vectors
// Adaptation of Large Language Models"): W = U·diag(S)·Vᵀ; the principal part U_r·diag(S_r)·V_rᵀ
// trains — U_r, S_r and V_rᵀ all three — against the frozen residual W − U_r·diag(S_r)·V_rᵀ (as
// PiSSA), while a regulariser keeps U_r's columns and V_rᵀ's rows orthonormal
// (src/train/orthonormal.ts). Here B = U_r, A = V_rᵀ and the diagonal core between them
// (src/train/core.ts) starts at S_r / s, so the term s·B·C·A is the principal part exactly. The
// export is the plain LoRA B·C, A for the residual, converted for the original base like PiSSA's.
import type { Factors, FactorsJob } from '../inits.ts';
import { topSingularTriplets } from './svfit.ts';

/** B = U_r, A = V_rᵀ and the core diag(S_r / s) of W's top r singular triplets (W in f32). */
export async function sorsaFactors({ gpu, module, weight }: FactorsJob<'none'>): Promise<Factors> {
  const { rank } = module;
  const { a, b, s } = await topSingularTriplets(gpu, weight, rank);
  const core = new Float32Array(rank * rank);
  for (let j = 0; j < rank; j++) core[j * rank + j] = s[j] / module.scale;
  return { a, b, core };
}
