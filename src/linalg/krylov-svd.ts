// Truncated SVD by a randomized block Krylov method on the GPU, run until the rank-k truncation
// stops moving (the algorithm and its convergence test: cpu/krylov-svd.ts). Every product with
// A, every orthogonalisation and QR runs on the GPU; the host sees the small matrices only.
import type { Gpu } from '../gpu/device.ts';
import { run } from '../gpu/dispatch.ts';
import { readF32 } from '../gpu/readback.ts';
import { createTensor, releaseTensor, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import { identity, mat, toF32, type Mat } from './cpu/dense.ts';
import {
  KrylovProjection,
  krylovPlan,
  newDirections,
  nextBlockWidth,
  whitening,
  type KrylovSvdOptions,
} from './cpu/krylov-svd.ts';
import { matmul } from './matmul.ts';
import { qr } from './qr.ts';
import { gaussian } from './random.ts';
import { liftedSvd, matrixShape, orthonormalize, timesHost, type SvdResult } from './svd.ts';
import { transpose } from './transpose.ts';

export type { KrylovSvdOptions };

/** The first `rows` rows of a row-major matrix: a view on the same buffer (not owned). */
function leadingRows(t: Tensor, rows: number): Tensor {
  const numel = rows * t.shape[1];
  return { ...t, shape: [rows, t.shape[1]], numel, byteLength: Math.max(4, numel * 4) };
}

/**
 * Vectors stored as the rows of a buffer sized for the largest basis: a block is appended by one
 * copy, and products with all of them (V·x, Vᵀ·c) are single matmuls on a view of the rows.
 */
class Rows {
  private readonly rows: Tensor;
  size = 0;

  constructor(
    private readonly gpu: Gpu,
    capacity: number,
    private readonly length: number,
    label: string,
  ) {
    this.rows = createTensor(gpu, [capacity, length], 'f32', label);
  }

  get view(): Tensor {
    return leadingRows(this.rows, this.size);
  }

  /** Appends the rows of t (w × length). */
  append(t: Tensor): void {
    const encoder = this.gpu.device.createCommandEncoder({ label: 'krylov rows append' });
    const offset = this.size * this.length * 4;
    encoder.copyBufferToBuffer(t.buffer, 0, this.rows.buffer, offset, t.numel * 4);
    this.gpu.device.queue.submit([encoder.finish()]);
    this.size += t.shape[0];
  }

  /** Appends the columns of q (length × w). */
  async appendColumns(q: Tensor): Promise<void> {
    const qt = await run(this.gpu, (b) => transpose(b, q));
    this.append(qt);
    releaseTensor(this.gpu, qt);
  }

  /** x ← x − Q·(Qᵀ·x) in place for the rows Qᵀ; returns Qᵀ·x (the caller owns it). */
  orthogonalize(x: Tensor): Promise<Tensor> {
    const q = this.view;
    return run(this.gpu, (b) => {
      const c = matmul(b, q, x);
      matmul(b, q, c, { transA: true, alpha: -1, beta: 1, into: x });
      return c;
    });
  }

  release(): void {
    releaseTensor(this.gpu, this.rows);
  }
}

async function readHost(gpu: Gpu, t: Tensor): Promise<Mat> {
  try {
    return mat(t.shape[0], t.shape[1], await readF32(gpu, t));
  } finally {
    releaseTensor(gpu, t);
  }
}

/**
 * Truncated SVD of A (m×n) to `rank` triplets that matches the exact truncation to the
 * tolerance, flat spectra included: a randomized block Krylov method (Musco & Musco 2015) with
 * blocks of rank + oversample columns, Q₀ = qr(A·Ω) for Gaussian Ω, each step Qⱼ₊₁ from the
 * new directions of A·Aᵀ·Qⱼ, orthogonalised twice against the basis, until the truncation on the
 * top Ritz vectors stops moving. The caller owns `u` and `v`.
 */
export async function krylovSvd(
  gpu: Gpu,
  a: Tensor,
  options: KrylovSvdOptions,
): Promise<SvdResult> {
  const [m, n] = matrixShape('krylovSvd', a);
  const plan = krylovPlan(m, n, options);
  if (plan.whole) {
    if (m <= n) return wholeSideSvd(gpu, a, plan);
    const at = await run(gpu, (b) => transpose(b, a));
    try {
      const t = await wholeSideSvd(gpu, at, plan);
      return { u: t.v, s: t.s, v: t.u };
    } finally {
      releaseTensor(gpu, at);
    }
  }
  const capacity = Math.min(plan.side, plan.maxBasis);
  // Qᵀ, and Wᵀ = Qᵀ·A: the products with A each step makes anyway, kept for the last one.
  const basis = new Rows(gpu, capacity, m, 'krylov basis');
  const images = new Rows(gpu, capacity, n, 'krylov Aᵀ·basis');
  const omega = uploadTensor(
    gpu,
    gaussian(n * plan.block, plan.seed),
    [n, plan.block],
    'f32',
    'svd Ω',
  );
  let last = await orthonormalize(gpu, await run(gpu, (b) => matmul(b, a, omega)));
  releaseTensor(gpu, omega);
  try {
    await basis.appendColumns(last);
    const projection = new KrylovProjection(plan.rank, plan.tolerance);
    for (;;) {
      // One batch: Wⱼᵀ = Qⱼᵀ·A, Z = A·Wⱼ, C = Qᵀ·Z (T's next column block), Z ← Z − Q·C, ZᵀZ.
      const [wt, z, c, g] = await run(gpu, (b) => {
        const wt = matmul(b, last, a, { transA: true });
        const z = matmul(b, a, wt, { transB: true });
        const c = matmul(b, basis.view, z);
        matmul(b, basis.view, c, { transA: true, alpha: -1, beta: 1, into: z });
        return [wt, z, c, matmul(b, z, z, { transA: true })];
      });
      images.append(wt);
      releaseTensor(gpu, wt);
      let next: Tensor;
      try {
        const [coefficients, gram] = await Promise.all([readHost(gpu, c), readHost(gpu, g)]);
        const converged = projection.extend(coefficients);
        const width = nextBlockWidth(basis.size, plan);
        if (converged || width === 0) break;
        const whitened = whitening(gram);
        if (whitened.cols === 0) break;
        // F = Z·M, its Gram matrix and Qᵀ·F, then F ← F − Q·(Qᵀ·F): the second projection.
        const [f, fc, fg] = await run(gpu, (b) => {
          const m = b.temporary([whitened.rows, whitened.cols], 'f32', 'whitening');
          gpu.device.queue.writeBuffer(m.buffer, 0, toF32(whitened));
          const f = matmul(b, z, m);
          const fc = matmul(b, basis.view, f);
          const fg = matmul(b, f, f, { transA: true });
          matmul(b, basis.view, fc, { transA: true, alpha: -1, beta: 1, into: f });
          return [f, fc, fg];
        });
        try {
          const [fCoefficients, fGram] = await Promise.all([readHost(gpu, fc), readHost(gpu, fg)]);
          const directions = newDirections(fGram, fCoefficients, width);
          if (directions.cols === 0) break;
          next = await timesHost(gpu, f, directions);
        } finally {
          releaseTensor(gpu, f);
        }
      } finally {
        releaseTensor(gpu, z);
      }
      releaseTensor(gpu, last);
      last = next;
      await basis.appendColumns(last);
    }
    const y = projection.ritzVectors(plan.block);
    return await rayleighRitz(gpu, basis.view, images.view, y, plan.rank);
  } finally {
    releaseTensor(gpu, last);
    basis.release();
    images.release();
  }
}

/**
 * A short side m ≤ n taken whole (plan.whole): Q = I, so T = A·Aᵀ in one product, W = Aᵀ, and
 * the truncation is exact. Cheaper there than a basis grown towards all of it block by block.
 */
async function wholeSideSvd(
  gpu: Gpu,
  a: Tensor,
  plan: ReturnType<typeof krylovPlan>,
): Promise<SvdResult> {
  const m = a.shape[0];
  const projection = new KrylovProjection(plan.rank, plan.tolerance);
  projection.extend(await readHost(gpu, await run(gpu, (b) => matmul(b, a, a, { transB: true }))));
  const eye = uploadTensor(gpu, toF32(identity(m)), [m, m], 'f32', 'identity');
  try {
    return await rayleighRitz(gpu, eye, a, projection.ritzVectors(plan.block), plan.rank);
  } finally {
    releaseTensor(gpu, eye);
  }
}

/**
 * The SVD of A on Ũ = Q·Y (the leading Ritz vectors): Aᵀ·Ũ = W·Y = Q_b·R_b and R_b = X·Σ·Zᵀ
 * on the host give A ≈ Ũ·ŨᵀA = (Ũ·Z)·Σ·(Q_b·X)ᵀ.
 */
async function rayleighRitz(
  gpu: Gpu,
  basisRows: Tensor,
  imageRows: Tensor,
  y: Mat,
  rank: number,
): Promise<SvdResult> {
  const [leading, bt] = await run(gpu, (b) => {
    const ys = b.temporary([y.rows, y.cols], 'f32', 'ritz vectors');
    gpu.device.queue.writeBuffer(ys.buffer, 0, toF32(y));
    return [matmul(b, basisRows, ys, { transA: true }), matmul(b, imageRows, ys, { transA: true })];
  });
  try {
    const { q: qb, r: rb } = await qr(gpu, bt).finally(() => {
      releaseTensor(gpu, bt);
    });
    try {
      const { qx: v, s, y: core } = await liftedSvd(gpu, qb, rb, rank);
      return { u: await timesHost(gpu, leading, core), s, v };
    } finally {
      releaseTensor(gpu, qb);
    }
  } finally {
    releaseTensor(gpu, leading);
  }
}
