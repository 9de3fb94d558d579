// LoRA-SB (Ponkshe et al. 2024, "Initialization using Update Approximation is a Silver Bullet for
// Extremely Efficient Low-Rank Fine-Tuning"): the LoRA-XS form y += s·B·R·A·x with B and A frozen
// and only the r × r matrix R trained, B and A taken from the truncated SVD of the first
// full-fine-tuning update — here the mean full-weight gradient G on a few batches (the statistic
// LoRA-GA reads): B = U_r, A = V_rᵀ. R is the core between them (src/train/core.ts). The paper
// starts R at the first update's projection, Σ_r up to the step size; R starts at zero here, so
// the output is unchanged at step 0, and its first gradient, s·U_rᵀ·G·V_r = s·Σ_r, points the
// first step that way. Exported as the plain LoRA B·R, A.
import type { Gpu } from '../../gpu/device.ts';
import { uploadTensor, type Tensor } from '../../gpu/tensor.ts';
import type { AdaptedModule } from '../config.ts';
import type { Factors } from '../inits.ts';
import { gradientSingularVectors } from './lora-ga.ts';

/** B = U_r, A = V_rᵀ of G. */
export async function loraSbFactors(
  gpu: Gpu,
  m: AdaptedModule,
  gradient: Tensor,
  seed: number,
): Promise<Factors> {
  const r = m.rank;
  const { u, v } = await gradientSingularVectors(gpu, m, gradient, r, seed);
  const a = new Float32Array(r * m.in);
  for (let j = 0; j < r; j++) for (let i = 0; i < m.in; i++) a[j * m.in + i] = v[i * r + j];
  return {
    a: uploadTensor(gpu, a, [r, m.in], 'f32', `${m.path} A`),
    b: uploadTensor(gpu, u, [m.out, r], 'f32', `${m.path} B`),
  };
}
