import type { Gpu } from '../gpu/device.ts';
import { run } from '../gpu/dispatch.ts';
import { ShapeError } from '../gpu/errors.ts';
import { releaseTensor, shapeString, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import { columns, multiply, toF32, transpose as transposeMat, type Mat } from './cpu/dense.ts';
import { jacobiSvd, type RandomizedSvdOptions } from './cpu/svd.ts';

export type { RandomizedSvdOptions };
import { matmul } from './matmul.ts';
import { qr } from './qr.ts';
import { gaussian } from './random.ts';
import { transpose } from './transpose.ts';

/** A ≈ U·diag(s)·Vᵀ with s descending; the caller owns `u` and `v`. */
export interface SvdResult {
  /** m×k, orthonormal columns. */
  u: Tensor;
  s: Float64Array;
  /** n×k, orthonormal columns. */
  v: Tensor;
}

export function matrixShape(what: string, t: Tensor): [number, number] {
  if (t.shape.length !== 2 || t.dtype !== 'f32') {
    throw new ShapeError(`${what}: expected an f32 matrix, got ${t.dtype}${shapeString(t.shape)}`);
  }
  return t.shape as [number, number];
}

/** q·M for a host matrix M (uploaded as f32). */
export function timesHost(gpu: Gpu, q: Tensor, m: Mat): Promise<Tensor> {
  return run(gpu, (b) => {
    const t = b.temporary([m.rows, m.cols], 'f32', 'svd factor');
    gpu.device.queue.writeBuffer(t.buffer, 0, toF32(m));
    return matmul(b, q, t);
  });
}

/**
 * SVD of Q·C where Q (m×p, orthonormal columns, on the GPU) is given and C (p×n) is small
 * and on the host: C = X·Σ·Yᵀ in f64 by Jacobi, so Q·C = (Q·X)·Σ·Yᵀ. Keeps `rank` triplets;
 * `side` says which returned factor Q·X is.
 */
export async function liftedSvd(
  gpu: Gpu,
  q: Tensor,
  c: Mat,
  rank: number,
): Promise<{ qx: Tensor; s: Float64Array; y: Mat }> {
  const { u: x, s, v: y } = jacobiSvd(c);
  const qx = await timesHost(gpu, q, columns(x, 0, rank));
  return { qx, s: s.slice(0, rank), y: columns(y, 0, rank) };
}

/**
 * Exact SVD of an m×n matrix (min(m, n) ≤ 1024) as a QR-preconditioned SVD: A = Q·R on the GPU
 * (qr.ts), then R = X·Σ·Yᵀ by one-sided Jacobi in f64 on the host, so U = Q·X, V = Y. Jacobi
 * keeps high relative accuracy in σ; the QR puts all O(m·n²) work on the GPU and leaves the
 * host an n×n problem (fast up to n ≈ 256; n = 1024 takes tens of seconds on one core).
 */
export async function exactSvd(gpu: Gpu, a: Tensor): Promise<SvdResult> {
  const [m, n] = matrixShape('exactSvd', a);
  if (m < n) {
    const at = await run(gpu, (b) => transpose(b, a));
    try {
      const t = await exactSvd(gpu, at);
      return { u: t.v, s: t.s, v: t.u };
    } finally {
      releaseTensor(gpu, at);
    }
  }
  const { q, r } = await qr(gpu, a);
  try {
    const { qx, s, y } = await liftedSvd(gpu, q, r, n);
    return { u: qx, s, v: uploadTensor(gpu, toF32(y), [n, n], 'f32', 'svd V') };
  } finally {
    releaseTensor(gpu, q);
  }
}

/**
 * Randomized truncated SVD (Halko, Martinsson & Tropp 2011, Alg. 4.4 + 5.1), the contract of
 * torch.svd_lowrank(A, q, niter): Y = A·Ω for Gaussian Ω (n×q), Q = qr(Y); `niter` times
 * Q = qr(A·qr(Aᵀ·Q)); then Bᵀ = Aᵀ·Q (n×q) = Q_b·R_b, R_b = X·Σ·Yᵀ on the host, so
 * A ≈ Q·B = (Q·Y)·Σ·(Q_b·X)ᵀ. Every product and QR runs on the GPU; the host sees q×q.
 */
export async function randomizedSvd(
  gpu: Gpu,
  a: Tensor,
  options: RandomizedSvdOptions,
): Promise<SvdResult> {
  const [m, n] = matrixShape('randomizedSvd', a);
  const { rank, oversample = 0, niter = 2, seed = 0 } = options;
  if (!(Number.isInteger(rank) && rank >= 1 && rank <= Math.min(m, n))) {
    throw new ShapeError(`randomizedSvd: rank must be 1…${Math.min(m, n)}, got ${rank}`);
  }
  const q = Math.min(rank + oversample, m, n);
  const omega = uploadTensor(gpu, gaussian(n * q, seed), [n, q], 'f32', 'svd Ω');
  let basis = await orthonormalize(gpu, await run(gpu, (b) => matmul(b, a, omega)));
  releaseTensor(gpu, omega);
  for (let i = 0; i < niter; i++) {
    const z = await orthonormalize(
      gpu,
      await run(gpu, (b) => matmul(b, a, basis, { transA: true })),
    );
    releaseTensor(gpu, basis);
    basis = await orthonormalize(gpu, await run(gpu, (b) => matmul(b, a, z)));
    releaseTensor(gpu, z);
  }
  const bt = await run(gpu, (b) => matmul(b, a, basis, { transA: true }));
  const { q: qb, r: rb } = await qr(gpu, bt);
  releaseTensor(gpu, bt);
  try {
    // Bᵀ = Q_b·R_b and R_b = X·Σ·Yᵀ give A ≈ Q·B = (Q·Y)·Σ·(Q_b·X)ᵀ.
    const { qx: v, s, y } = await liftedSvd(gpu, qb, rb, rank);
    const u = await timesHost(gpu, basis, y);
    return { u, s, v };
  } finally {
    releaseTensor(gpu, qb, basis);
  }
}

/** Q of qr(t); releases t. */
export async function orthonormalize(gpu: Gpu, t: Tensor): Promise<Tensor> {
  try {
    return (await qr(gpu, t)).q;
  } finally {
    releaseTensor(gpu, t);
  }
}

/**
 * SVD of the product B·A (B m×R, A R×n) without forming it: B = Q_b·R_b, Aᵀ = Q_a·R_a on the
 * GPU, the R×R core R_b·R_aᵀ = X·Σ·Yᵀ on the host, so B·A = (Q_b·X)·Σ·(Q_a·Y)ᵀ. Merging
 * adapters uses this: ΔW = Σ wᵢsᵢBᵢAᵢ is one such product with stacked factors.
 */
export async function lowRankProductSvd(
  gpu: Gpu,
  bFactor: Tensor,
  aFactor: Tensor,
  rank?: number,
): Promise<SvdResult> {
  const [m, r] = matrixShape('lowRankProductSvd B', bFactor);
  const [ra, n] = matrixShape('lowRankProductSvd A', aFactor);
  if (r !== ra) throw new ShapeError(`lowRankProductSvd: B is ${m}×${r} but A is ${ra}×${n}`);
  if (m < r || n < r)
    throw new ShapeError(`lowRankProductSvd: rank ${r} exceeds a side of the ${m}×${n} product`);
  const k = rank ?? r;
  if (!(Number.isInteger(k) && k >= 1 && k <= r))
    throw new ShapeError(`lowRankProductSvd: rank must be 1…${r}, got ${k}`);
  const at = await run(gpu, (b) => transpose(b, aFactor));
  const qb = await qr(gpu, bFactor);
  const qa = await qr(gpu, at);
  releaseTensor(gpu, at);
  try {
    const core = multiply(qb.r, transposeMat(qa.r));
    const { qx: u, s, y } = await liftedSvd(gpu, qb.q, core, k);
    const v = await timesHost(gpu, qa.q, y);
    return { u, s, v };
  } finally {
    releaseTensor(gpu, qb.q, qa.q);
  }
}
