// SORSA's orthonormal regulariser (Cao & Song 2024) on each module's B [out × r] and A [r × in]:
//   R = ‖BᵀB − I‖²_F + ‖A·Aᵀ − I‖²_F,   ∂R/∂B = 4·B·(BᵀB − I),   ∂R/∂A = 4·(A·Aᵀ − I)·A.
// γ·∂R joins the loss's gradients before clipping and AdamW, as the authors' training loop runs
// the regulariser's backward before the optimiser's step. The squares (the form; the
// authors' code takes the plain Frobenius norms) keep the gradient defined at the orthonormal
// start, where an unsquared norm has none. Reported: the authors' measure, the mean ‖·‖_F over
// the 2·M matrices.
import type { Gpu } from '../gpu/device.ts';
import { run } from '../gpu/dispatch.ts';
import { readF32 } from '../gpu/readback.ts';
import { createTensor, releaseTensor, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import { matmul } from '../linalg/matmul.ts';
import { sumSquares } from './kernels.ts';

/** One module's factors and where their gradients accumulate (absent where one is frozen). */
export interface RegularisedFactors {
  a: Tensor;
  b: Tensor;
  grads: { a?: Tensor; b?: Tensor };
}

/** −I of order r, row-major: the start of a Gram matrix accumulated into it. */
function minusIdentity(r: number): Float32Array {
  const d = new Float32Array(r * r);
  for (let j = 0; j < r; j++) d[j * r + j] = -1;
  return d;
}

/**
 * Adds γ·∂R to every module's factor gradients and returns the orthonormality error before the
 * step (the mean of ‖BᵀB − I‖_F and ‖A·Aᵀ − I‖_F over the modules).
 */
export async function addOrthonormalGradients(
  gpu: Gpu,
  modules: readonly RegularisedFactors[],
  gamma: number,
): Promise<number> {
  if (modules.length === 0) return 0;
  const scratch: Tensor[] = [];
  const sums = createTensor(gpu, [2 * modules.length], 'f32', 'Σ (Gram − I)²');
  try {
    await run(gpu, (batch) => {
      modules.forEach(({ a, b, grads }, i) => {
        const r = a.shape[0];
        const gramB = uploadTensor(gpu, minusIdentity(r), [r, r], 'f32', 'BᵀB − I');
        const gramA = uploadTensor(gpu, minusIdentity(r), [r, r], 'f32', 'A·Aᵀ − I');
        scratch.push(gramB, gramA);
        matmul(batch, b, b, { transA: true, beta: 1, into: gramB });
        matmul(batch, a, a, { transB: true, beta: 1, into: gramA });
        sumSquares(batch, gramB, sums, 2 * i);
        sumSquares(batch, gramA, sums, 2 * i + 1);
        if (gamma === 0) return;
        if (grads.b) matmul(batch, b, gramB, { alpha: 4 * gamma, beta: 1, into: grads.b });
        if (grads.a) matmul(batch, gramA, a, { alpha: 4 * gamma, beta: 1, into: grads.a });
      });
    });
    const squares = await readF32(gpu, sums);
    return squares.reduce((total, s) => total + Math.sqrt(s), 0) / squares.length;
  } finally {
    releaseTensor(gpu, sums, ...scratch);
  }
}
