// DoRA's row norms on the GPU (Liu et al. 2024). A DoRA module's weight is W + s·B·A with each
// output row rescaled to m_o / ‖(W + s·B·A)_o‖; the norms change with A and B, so training
// recomputes them after every update, without forming the out × in matrix:
//   ‖W_o + s·(B·A)_o‖² = ‖W_o‖² + Σ_j B_oj·(2s·W·Aᵀ + s²·B·(A·Aᵀ))_oj
// where ‖W_o‖² is constant (computed once). The cost is one out × in × r product, as B·A's.
import type { Batch } from '../gpu/dispatch.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { binary, unary } from '../linalg/elementwise.ts';
import { matmul } from '../linalg/matmul.ts';
import { reduceRows } from '../linalg/reduce.ts';
import { transpose } from '../linalg/transpose.ts';
import { asF32 } from '../linalg/widen.ts';

/** One DoRA module while it trains. */
export interface DoraState {
  /** m [out]: the trained magnitude of each output row. */
  magnitude: Tensor;
  /** ‖W_o‖² of the weight trained against (the base's, or the residual of a base-mutating init). */
  weightSquares: Tensor;
  /** ‖W + s·B·A‖ per row at the current factors, and m divided by it: what the forward uses. */
  norm: Tensor;
  rowScale: Tensor;
}

type Keep = (t: Tensor) => Tensor;

/** ‖W_o‖² per output row (W in any float precision). */
export function weightRowSquares(batch: Batch, weight: Tensor, keep: Keep): Tensor {
  const w = weight.dtype === 'f32' ? weight : keep(asF32(batch, weight));
  return reduceRows(batch, 'sum', keep(unary(batch, 'square', w)));
}

/** ‖W + s·B·A‖ per output row, given ‖W_o‖² (intermediates go to `keep`). */
export function doraRowNorms(
  batch: Batch,
  weight: Tensor,
  weightSquares: Tensor,
  a: Tensor,
  b: Tensor,
  scale: number,
  keep: Keep,
): Tensor {
  // 2s·W·Aᵀ, computed as (A·Wᵀ)ᵀ: matmul reads W as its B operand in any precision.
  const crossT = keep(matmul(batch, a, weight, { transB: true, alpha: 2 * scale }));
  const cross = keep(transpose(batch, crossT));
  const gram = keep(matmul(batch, a, a, { transB: true }));
  matmul(batch, b, gram, { alpha: scale * scale, beta: 1, into: cross });
  const added = keep(reduceRows(batch, 'sum', keep(binary(batch, 'mul', b, cross))));
  return unary(batch, 'sqrt', keep(binary(batch, 'add', added, weightSquares)));
}
