// LoRA-Pro (Wang et al. 2024, "LoRA-Pro: Are Low-Rank Adapters Properly Optimized?"). A step on
// A and B with gradients gA, gB moves W + s·B·A by s·(B·gA + gB·A) to first order: LoRA trains as
// full fine-tuning would with this rank-2r "equivalent gradient". The plain gradients gA = s·Bᵀ·G,
// gB = s·G·Aᵀ (G = ∂L/∂W) make it a poor approximation of G. LoRA-Pro uses instead the gradients
// whose equivalent gradient is the closest to G in Frobenius norm (the paper's Theorem 2.1: a
// family gA + X·A, gB − B·X, all with the same equivalent gradient, the projection of G onto
// {B·Y + Z·A}), picking the member closest to the plain gradients (its Theorem 2.2: X solves a
// Sylvester equation):
//   gA' = (1/s²)·(BᵀB)⁻¹·gA + X·A
//   gB' = (1/s²)·(I − B·(BᵀB)⁻¹·Bᵀ)·gB·(AAᵀ)⁻¹ − B·X
//   BᵀB·X + X·AAᵀ = −(1/s²)·(BᵀB)⁻¹·gA·Aᵀ
// Only r × r matrices reach the host: BᵀB, AAᵀ and gA·Aᵀ (which equals Bᵀ·gB = s·BᵀGAᵀ, so it
// also serves the projection). The inverses and X are solved there in f64, and the new gradients
// are GPU products again: gA' = R·gA + X·A and gB' = gB·P − B·Q with
//   R = (BᵀB)⁻¹/s²,  P = (AAᵀ)⁻¹/s²,  Q = (BᵀB)⁻¹·(gA·Aᵀ)·(AAᵀ)⁻¹/s² + X.
// Singular Gram matrices (B = 0 at PEFT's init) get pseudo-inverses: the first step then moves B
// alone, by gB·(AAᵀ)⁻¹/s². The correction is linear in (gA, gB), so clipping the plain gradients'
// global norm before or after it is the same.
//
// AdamW, simplified: the paper's algorithm keeps AdamW's moments of the equivalent gradient in
// the full out × in space and maps Adam's direction back through the closed form. That costs two
// out × in f32 tensors per module (the model's size twice over) and dense products every step,
// which a LoRA trainer in a browser tab cannot afford; like the lighter variant the authors also
// publish, the corrected gradients feed the usual AdamW over A and B.
import type { Gpu } from '../gpu/device.ts';
import { run } from '../gpu/dispatch.ts';
import { readF32 } from '../gpu/readback.ts';
import { releaseTensor, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import { axpy } from '../linalg/elementwise.ts';
import { matmul } from '../linalg/matmul.ts';
import { mat, multiply, transpose, type Mat } from '../linalg/cpu/dense.ts';
import { jacobiSvd } from '../linalg/cpu/svd.ts';
import type { FactorsWithGradients } from './trainable.ts';

/** The r × r matrices of the corrected gradients: gA' = R·gA + X·A, gB' = gB·P − B·Q. */
export interface LoraProCoefficients {
  r: Mat;
  x: Mat;
  p: Mat;
  q: Mat;
}

/** Eigenvalues and orthonormal eigenvectors (the columns of `vectors`) of a symmetric matrix. */
interface Eigen {
  values: Float64Array;
  vectors: Mat;
}

/** The eigendecomposition of a symmetric PSD matrix. */
function symmetricEigen(s: Mat): Eigen {
  // For a PSD matrix the SVD's V holds eigenvectors; Rayleigh quotients give the eigenvalues
  // with their signs (a Gram matrix computed in f32 can be indefinite by rounding).
  const vectors = jacobiSvd(s).v;
  const sv = multiply(s, vectors);
  const values = new Float64Array(s.rows).map((_, j) => {
    let dot = 0;
    for (let i = 0; i < s.rows; i++) dot += vectors.data[i * s.rows + j] * sv.data[i * s.rows + j];
    return dot;
  });
  // Below r·ε_f32 of the largest, an eigenvalue is the f32 Gram matrix's rounding: zero.
  const floor = s.rows * 2 ** -23 * Math.max(0, ...values);
  return { values: values.map((v) => (v > floor ? v : 0)), vectors };
}

/** V·diag(1/λ)·Vᵀ over the nonzero eigenvalues. */
function pseudoInverse(e: Eigen): Mat {
  const n = e.values.length;
  const scaled = mat(n, n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) {
      const value = e.values[j];
      scaled.data[i * n + j] = value > 0 ? e.vectors.data[i * n + j] / value : 0;
    }
  return multiply(scaled, transpose(e.vectors));
}

/**
 * X with S_B·X + X·S_A = C for symmetric PSD S_B = U·Λ·Uᵀ, S_A = V·M·Vᵀ: in those bases it is
 * entrywise, Y_ij = (UᵀCV)_ij / (λ_i + μ_j), X = U·Y·Vᵀ (0 where λ_i + μ_j = 0: least norm).
 */
function solveSylvester(sb: Eigen, sa: Eigen, c: Mat): Mat {
  const y = multiply(multiply(transpose(sb.vectors), c), sa.vectors);
  for (let i = 0; i < y.rows; i++)
    for (let j = 0; j < y.cols; j++) {
      const denominator = sb.values[i] + sa.values[j];
      y.data[i * y.cols + j] = denominator > 0 ? y.data[i * y.cols + j] / denominator : 0;
    }
  return multiply(multiply(sb.vectors, y), transpose(sa.vectors));
}

function scaled(m: Mat, factor: number): Mat {
  return { ...m, data: m.data.map((v) => v * factor) };
}

/** R, X, P and Q from BᵀB, AAᵀ and gA·Aᵀ (r × r each) and the scaling s, in f64. */
export function loraProCoefficients(
  bTb: Mat,
  aAt: Mat,
  gaAt: Mat,
  scale: number,
): LoraProCoefficients {
  const eb = symmetricEigen(bTb);
  const ea = symmetricEigen(aAt);
  const inverseB = pseudoInverse(eb);
  const inverseA = pseudoInverse(ea);
  const s2 = scale * scale;
  const x = solveSylvester(eb, ea, scaled(multiply(inverseB, gaAt), -1 / s2));
  const projected = scaled(multiply(multiply(inverseB, gaAt), inverseA), 1 / s2);
  return {
    r: scaled(inverseB, 1 / s2),
    x,
    p: scaled(inverseA, 1 / s2),
    q: { ...projected, data: projected.data.map((v, i) => v + x.data[i]) },
  };
}

async function readSquare(gpu: Gpu, t: Tensor): Promise<Mat> {
  return mat(t.shape[0], t.shape[1], await readF32(gpu, t));
}

/** Replaces every module's gradients, in place, by LoRA-Pro's. */
export async function loraProGradients(
  gpu: Gpu,
  modules: readonly FactorsWithGradients[],
): Promise<void> {
  const grams = await run(gpu, (batch) =>
    modules.map(({ a, b, grads }) => ({
      bTb: matmul(batch, b, b, { transA: true }),
      aAt: matmul(batch, a, a, { transB: true }),
      gaAt: matmul(batch, grads.a, a, { transB: true }),
    })),
  );
  const scratch: Tensor[] = [];
  const keep = (t: Tensor) => {
    scratch.push(t);
    return t;
  };
  const upload = (m: Mat) =>
    keep(uploadTensor(gpu, Float32Array.from(m.data), [m.rows, m.cols], 'f32', 'LoRA-Pro'));
  try {
    const coefficients: Record<keyof LoraProCoefficients, Tensor>[] = [];
    for (const [i, g] of grams.entries()) {
      const c = loraProCoefficients(
        await readSquare(gpu, g.bTb),
        await readSquare(gpu, g.aAt),
        await readSquare(gpu, g.gaAt),
        modules[i].scale,
      );
      coefficients.push({ r: upload(c.r), x: upload(c.x), p: upload(c.p), q: upload(c.q) });
    }
    await run(gpu, (batch) => {
      modules.forEach(({ a, b, grads }, i) => {
        const { r, x, p, q } = coefficients[i];
        // The old gradient is read into a fresh tensor first; then grads.a is overwritten.
        const fromGradA = keep(matmul(batch, r, grads.a));
        matmul(batch, x, a, { into: grads.a });
        axpy(batch, 1, fromGradA, grads.a);
        const fromGradB = keep(matmul(batch, grads.b, p));
        matmul(batch, b, q, { alpha: -1, into: grads.b });
        axpy(batch, 1, fromGradB, grads.b);
      });
    });
  } finally {
    releaseTensor(gpu, ...scratch, ...grams.flatMap((g) => [g.bTb, g.aAt, g.gaAt]));
  }
}
