import type { Gpu } from '../gpu/device.ts';
import { run } from '../gpu/dispatch.ts';
import { ShapeError } from '../gpu/errors.ts';
import { readF32 } from '../gpu/readback.ts';
import { releaseTensor, shapeString, type Tensor } from '../gpu/tensor.ts';
import { identity, mat, multiply, toF32, type Mat } from './cpu/dense.ts';
import { cholesky, invertUpper } from './cpu/qr.ts';
import { matmul } from './matmul.ts';

export interface QrResult {
  /** m×k, orthonormal columns (to `orthogonality`). Owned by the caller. */
  q: Tensor;
  /** k×k upper triangular, in f64 on the host: A = Q·R. */
  r: Mat;
  /** max |QᵀQ − I| measured on the final Q. */
  orthogonality: number;
  /** CholeskyQR passes run (each: one Gram matrix, one k×k Cholesky, one product). */
  passes: number;
}

export interface QrOptions {
  /** Stop once max |QᵀQ − I| is below this. */
  tolerance?: number;
  maxPasses?: number;
}

/** Largest k the host-side k×k Cholesky is meant for (k³/3 flops in f64 on the CPU). */
export const QR_MAX_COLUMNS = 1024;

/**
 * QR of a tall-skinny m×k matrix (m ≥ k) by iterated CholeskyQR, shifted on breakdown:
 * each pass forms G = QᵀQ on the GPU (one matmul), factors G = TᵀT on the host in f64,
 * and replaces Q by Q·T⁻¹ on the GPU, accumulating R ← T·R. Where Cholesky fails (G
 * numerically indefinite: cond(A) beyond ~2¹² in f32) the pass factors G + s·I instead,
 * which lowers the condition number by ~1/√s per pass (shifted CholeskyQR, Fukaya et al.
 * 2020); unshifted passes then restore orthogonality to f32 rounding. Rank-deficient input
 * converges too: its null directions become an orthonormal completion with R's diagonal ~0.
 * Almost all flops are in matmuls, the fastest kernel we have on every device.
 */
export async function qr(gpu: Gpu, a: Tensor, options: QrOptions = {}): Promise<QrResult> {
  const { tolerance = 2e-6, maxPasses = 8 } = options;
  if (a.shape.length !== 2)
    throw new ShapeError(`qr: expected a matrix, got ${shapeString(a.shape)}`);
  const [m, k] = a.shape as [number, number];
  if (m < k) throw new ShapeError(`qr: needs rows ≥ columns, got ${shapeString(a.shape)}`);
  if (k > QR_MAX_COLUMNS) throw new ShapeError(`qr: at most ${QR_MAX_COLUMNS} columns, got ${k}`);

  let q = a;
  let r = identity(k);
  let passes = 0;
  let orthogonality: number;
  try {
    for (;;) {
      const g = await gram(gpu, q);
      orthogonality = offIdentity(g);
      // At least one pass, so that Q is always a new tensor the caller owns.
      if (passes > 0 && (orthogonality <= tolerance || passes >= maxPasses)) break;
      const t = shiftedCholesky(g);
      const next = await run(gpu, (b) => {
        const tInv = b.temporary([k, k], 'f32', 'qr T⁻¹');
        gpu.device.queue.writeBuffer(tInv.buffer, 0, toF32(invertUpper(t)));
        return matmul(b, q, tInv);
      });
      if (q !== a) releaseTensor(gpu, q);
      q = next;
      r = multiply(t, r);
      passes++;
    }
  } catch (e) {
    if (q !== a) releaseTensor(gpu, q);
    throw e;
  }
  return { q, r, orthogonality, passes };
}

/** G = QᵀQ, read back to f64 and symmetrised. */
async function gram(gpu: Gpu, q: Tensor): Promise<Mat> {
  const k = q.shape[1];
  const gt = await run(gpu, (b) => matmul(b, q, q, { transA: true }));
  const values = await readF32(gpu, gt);
  releaseTensor(gpu, gt);
  const g = mat(k, k, values);
  for (let i = 0; i < k; i++) {
    for (let j = i + 1; j < k; j++) {
      const mean = (g.data[i * k + j] + g.data[j * k + i]) / 2;
      g.data[i * k + j] = mean;
      g.data[j * k + i] = mean;
    }
  }
  return g;
}

function offIdentity(g: Mat): number {
  let worst = 0;
  for (let i = 0; i < g.rows; i++) {
    for (let j = 0; j < g.cols; j++)
      worst = Math.max(worst, Math.abs(g.data[i * g.cols + j] - (i === j ? 1 : 0)));
  }
  return worst;
}

/**
 * Cholesky of G, or of G + s·I when G is numerically indefinite. s starts at k·2⁻²⁰ of G's
 * largest diagonal entry, a few times the f32 rounding of a k-term Gram matrix, and grows
 * tenfold until the factorisation succeeds (an all-zero G gets an absolute shift).
 */
function shiftedCholesky(g: Mat): Mat {
  const plain = cholesky(g);
  if (plain) return plain;
  const k = g.rows;
  let scale = 0;
  for (let i = 0; i < k; i++) scale = Math.max(scale, g.data[i * k + i]);
  let shift = Math.max(scale, 1e-30) * k * 2 ** -20;
  for (;;) {
    const shifted = cholesky(g, shift);
    if (shifted) return shifted;
    shift *= 10;
  }
}
