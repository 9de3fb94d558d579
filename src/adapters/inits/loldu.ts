// LoLDU (Shi et al. 2024, "LoLDU: Low-Rank Adaptation via Lower-Diag-Upper Decomposition for
// Parameter-Efficient Fine-Tuning"): W = P·L·D·U by LU with partial pivoting, D = diag(U) and U
// scaled to a unit diagonal. The first r columns of P·L and rows of U stay frozen; the r
// diagonal values between them train, with one scale per module (the authors' trainable scaling
// factor; here a gain g on top of s, src/train/core.ts): the term is s·g·(P·L_r)·diag(z)·U_r, g
// starting at 1 and z at D_r / s, so that it starts as the LDU's rank-r part P·L_r·D_r·U_r, and
// the frozen residual is the rest (the authors subtract s times that part instead: the output is
// unchanged at step 0 either way). The export is the plain LoRA (P·L_r)·g·diag(z), U_r,
// converted for the original base.
//
// Only r elimination steps are needed for the first r columns of L and rows of U, so the LU runs
// on the host in f64 at O(r·out·in), not the O(out·in·min(out, in)) of a whole factorisation.
import { readMat, uploadMat } from '../../linalg/host.ts';
import { mat, type Mat } from '../../linalg/cpu/dense.ts';
import type { Factors, FactorsJob } from '../inits.ts';

/** The rank-r part of W's pivoted LDU: B = P·L_r [out × r], A = U_r [r × in], d = D_r. */
export function partialLdu(w: Mat, rank: number): { b: Mat; a: Mat; d: Float64Array } {
  const { rows, cols } = w;
  const m = Float64Array.from(w.data);
  // order[i]: the row of W that elimination row i holds.
  const order = Array.from({ length: rows }, (_, i) => i);
  const d = new Float64Array(rank);
  for (let k = 0; k < rank; k++) {
    let pivot = k;
    for (let i = k + 1; i < rows; i++)
      if (Math.abs(m[i * cols + k]) > Math.abs(m[pivot * cols + k])) pivot = i;
    if (pivot !== k) {
      for (let j = 0; j < cols; j++) {
        const t = m[k * cols + j];
        m[k * cols + j] = m[pivot * cols + j];
        m[pivot * cols + j] = t;
      }
      [order[k], order[pivot]] = [order[pivot], order[k]];
    }
    const head = m[k * cols + k];
    d[k] = head;
    // A column of zeros below and at the pivot: nothing to eliminate (L's multipliers stay 0).
    if (head === 0) continue;
    for (let i = k + 1; i < rows; i++) {
      const l = m[i * cols + k] / head;
      m[i * cols + k] = l;
      if (l === 0) continue;
      for (let j = k + 1; j < cols; j++) m[i * cols + j] -= l * m[k * cols + j];
    }
  }
  // L's multipliers sit below the diagonal of the first r columns (the diagonal is 1), in
  // elimination order; P puts row i back at W's row order[i].
  const b = mat(rows, rank);
  for (let i = 0; i < rows; i++)
    for (let k = 0; k < rank; k++)
      b.data[order[i] * rank + k] = i === k ? 1 : i > k ? m[i * cols + k] : 0;
  // U's first r rows, each divided by its diagonal (a zero pivot leaves its row as eliminated).
  const a = mat(rank, cols);
  for (let k = 0; k < rank; k++) {
    const scale = d[k] === 0 ? 1 : d[k];
    for (let j = k; j < cols; j++) a.data[k * cols + j] = m[k * cols + j] / scale;
  }
  return { b, a, d };
}

/** B = P·L_r, A = U_r and the core diag(D_r / s) (W in f32, read to the host). */
export async function lolduFactors({ gpu, module, weight }: FactorsJob<'none'>): Promise<Factors> {
  const { rank } = module;
  const { b, a, d } = partialLdu(await readMat(gpu, weight), rank);
  const core = new Float32Array(rank * rank);
  for (let k = 0; k < rank; k++) core[k * rank + k] = d[k] / module.scale;
  return { a: uploadMat(gpu, a), b: uploadMat(gpu, b), core };
}
