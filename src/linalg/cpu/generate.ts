// Matrices with known structure, for tests and the in-app self-check.
import { mat, multiply, transpose, type Mat } from './dense.ts';
import { householderQr } from './qr.ts';
import { seededRandom } from '../random.ts';

/** An m×n matrix of uniform entries in [−1, 1). */
export function randomMat(m: number, n: number, seed: number): Mat {
  const random = seededRandom(seed);
  return mat(
    m,
    n,
    Float64Array.from({ length: m * n }, () => 2 * random() - 1),
  );
}

/** m×p with orthonormal columns, p ≤ m. */
export function randomOrthonormal(m: number, p: number, seed: number): Mat {
  return householderQr(randomMat(m, p, seed)).q;
}

/** U·diag(σ)·Vᵀ with random orthonormal U (m×p), V (n×p): a matrix with a known spectrum. */
export function withSpectrum(m: number, n: number, sigmas: readonly number[], seed: number): Mat {
  const p = sigmas.length;
  const u = randomOrthonormal(m, p, seed);
  const v = randomOrthonormal(n, p, seed + 1);
  const us = mat(m, p, u.data);
  for (let i = 0; i < m; i++) for (let j = 0; j < p; j++) us.data[i * p + j] *= sigmas[j];
  return multiply(us, transpose(v));
}

/** σᵢ = decay^i: a spectrum like trained weight matrices have. */
export function decaying(count: number, decay: number): number[] {
  return Array.from({ length: count }, (_, i) => decay ** i);
}

/** Geometric spectrum from 1 down to 1/condition. */
export function conditioned(count: number, condition: number): number[] {
  return Array.from({ length: count }, (_, i) => condition ** (-i / Math.max(1, count - 1)));
}
