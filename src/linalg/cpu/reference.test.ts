import { describe, expect, it } from 'vitest';
import { conditioned, randomMat, withSpectrum } from './generate.ts';
import {
  frobenius,
  identity,
  mat,
  maxAbsDiff,
  multiply,
  orthogonalityError,
  transpose,
} from './dense.ts';
import { cholesky, householderQr, invertUpper } from './qr.ts';
import { jacobiSvd } from './svd.ts';
import { symmetricEigen } from './symmetric-eigen.ts';

describe('f64 references', () => {
  it.each([
    [5, 5],
    [40, 7],
    [100, 30],
  ])('Householder QR of %i×%i reconstructs with orthonormal Q', (m, k) => {
    const a = randomMat(m, k, m + k);
    const { q, r } = householderQr(a);
    expect(maxAbsDiff(multiply(q, r), a)).toBeLessThan(1e-13);
    expect(orthogonalityError(q)).toBeLessThan(1e-13);
    for (let i = 0; i < k; i++) for (let j = 0; j < i; j++) expect(r.data[i * k + j]).toBe(0);
  });

  it('Householder QR stays orthonormal for a rank-deficient matrix', () => {
    const a = withSpectrum(30, 10, [3, 2, 1, 0, 0, 0, 0, 0, 0, 0], 4);
    const { q, r } = householderQr(a);
    expect(maxAbsDiff(multiply(q, r), a)).toBeLessThan(1e-13);
    expect(orthogonalityError(q)).toBeLessThan(1e-13);
  });

  it('Cholesky and the triangular inverse', () => {
    const a = randomMat(20, 6, 1);
    const g = multiply(transpose(a), a);
    const r = cholesky(g)!;
    expect(maxAbsDiff(multiply(transpose(r), r), g)).toBeLessThan(1e-12);
    expect(maxAbsDiff(multiply(r, invertUpper(r)), identity(6))).toBeLessThan(1e-12);
    expect(cholesky(mat(2, 2, [1, 2, 2, 1]))).toBeNull();
  });

  it.each([
    [12, 12],
    [50, 9],
    [9, 50],
  ])('Jacobi SVD of %i×%i recovers a known spectrum', (m, n) => {
    const sigmas = conditioned(Math.min(m, n), 1e8);
    const a = withSpectrum(m, n, sigmas, 7);
    const { u, s, v } = jacobiSvd(a);
    // High relative accuracy: even σ = 1e-8 comes back to many digits.
    sigmas.forEach((sigma, i) => {
      expect(Math.abs(s[i] - sigma) / sigma).toBeLessThan(1e-7);
    });
    expect(orthogonalityError(u)).toBeLessThan(1e-12);
    expect(orthogonalityError(v)).toBeLessThan(1e-12);
    const us = mat(u.rows, u.cols, u.data);
    for (let i = 0; i < us.rows; i++)
      for (let j = 0; j < us.cols; j++) us.data[i * us.cols + j] *= s[j];
    expect(maxAbsDiff(multiply(us, transpose(v)), a) / frobenius(a)).toBeLessThan(1e-13);
  });

  it.each([1, 2, 45])(
    'symmetric eigendecomposition of a %i×%i indefinite matrix: V·Λ·Vᵀ, descending',
    (n) => {
      const r = randomMat(n, n, n);
      const a = mat(n, n, multiply(r, transpose(r)).data);
      for (let i = 0; i < n; i++) a.data[i * n + i] -= 0.5 * n;
      const { values, vectors } = symmetricEigen(a);
      expect(orthogonalityError(vectors)).toBeLessThan(1e-13);
      const scaled = mat(
        n,
        n,
        vectors.data.map((x, i) => x * values[i % n]),
      );
      expect(maxAbsDiff(multiply(scaled, transpose(vectors)), a)).toBeLessThan(1e-12 * n);
      for (let i = 1; i < n; i++) expect(values[i]).toBeLessThanOrEqual(values[i - 1]);
      const magnitudes = Array.from(values, Math.abs).sort((x, y) => y - x);
      const singular = jacobiSvd(a).s;
      magnitudes.forEach((m, i) => {
        expect(Math.abs(m - singular[i])).toBeLessThan(1e-12 * n);
      });
    },
  );

  it('symmetric eigendecomposition with repeated eigenvalues keeps orthonormal vectors', () => {
    const q = householderQr(randomMat(12, 12, 3)).q;
    const lambda = [5, 5, 5, 2, 2, 0, 0, 0, 0, -1, -1, -3];
    const scaled = mat(
      12,
      12,
      q.data.map((x, i) => x * lambda[i % 12]),
    );
    const { values, vectors } = symmetricEigen(multiply(scaled, transpose(q)));
    values.forEach((v, i) => {
      expect(Math.abs(v - lambda[i])).toBeLessThan(1e-13);
    });
    expect(orthogonalityError(vectors)).toBeLessThan(1e-13);
  });
});
