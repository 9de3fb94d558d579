import { describe, expect, it } from 'vitest';
import { releaseTensor } from '../gpu/tensor.ts';
import { useGpu } from '../testing/gpu.ts';
import { conditioned, decaying, randomMat, withSpectrum } from './cpu/generate.ts';
import { readMat, uploadMat } from './host.ts';
import {
  columns,
  frobenius,
  mat,
  maxAbsDiff,
  multiply,
  orthogonalityError,
  transpose,
  type Mat,
} from './cpu/dense.ts';
import { jacobiSvd } from './cpu/svd.ts';
import { exactSvd, lowRankProductSvd, randomizedSvd, type SvdResult } from './svd.ts';

const gpu = useGpu();

interface HostSvd {
  u: Mat;
  s: Float64Array;
  v: Mat;
}

async function toHost(result: SvdResult): Promise<HostSvd> {
  const host = {
    u: await readMat(gpu(), result.u),
    s: result.s,
    v: await readMat(gpu(), result.v),
  };
  releaseTensor(gpu(), result.u, result.v);
  return host;
}

function reconstruct({ u, s, v }: HostSvd): Mat {
  const us = mat(u.rows, u.cols, u.data);
  for (let i = 0; i < us.rows; i++)
    for (let j = 0; j < us.cols; j++) us.data[i * us.cols + j] *= s[j];
  return multiply(us, transpose(v));
}

/** Largest |σᵢ − σᵢ*| relative to σ₁*. */
function spectrumError(s: Float64Array, reference: Float64Array): number {
  return Math.max(...Array.from(s, (v, i) => Math.abs(v - reference[i]) / reference[0]));
}

/**
 * sin of the largest principal angle between the column spaces of orthonormal u1 and u2:
 * ‖u2 − u1·(u1ᵀu2)‖₂, which (unlike √(1 − cos²)) does not cancel for tiny angles.
 */
function subspaceGap(u1: Mat, u2: Mat): number {
  const projected = multiply(u1, multiply(transpose(u1), u2));
  const residual = mat(
    u2.rows,
    u2.cols,
    u2.data.map((v, i) => v - projected.data[i]),
  );
  return jacobiSvd(residual).s[0];
}

describe('exact SVD', () => {
  it.each([
    [1, 1],
    [50, 20],
    [20, 50],
    [64, 64],
    [300, 41],
    [7, 129],
  ])('%i×%i: U·Σ·Vᵀ = A, orthonormal U and V, σ as the f64 reference', async (m, n) => {
    const a = randomMat(m, n, m * 31 + n);
    const at = uploadMat(gpu(), a);
    const svd = await toHost(await exactSvd(gpu(), at));
    releaseTensor(gpu(), at);
    const p = Math.min(m, n);
    expect([svd.u.rows, svd.u.cols, svd.v.rows, svd.v.cols, svd.s.length]).toEqual([m, p, n, p, p]);
    expect(spectrumError(svd.s, jacobiSvd(a).s)).toBeLessThan(1e-5);
    expect(orthogonalityError(svd.u)).toBeLessThan(1e-5);
    expect(orthogonalityError(svd.v)).toBeLessThan(1e-5);
    expect(maxAbsDiff(reconstruct(svd), a) / frobenius(a)).toBeLessThan(1e-5);
  });

  it('keeps relative accuracy on an ill-conditioned matrix (κ = 1e4)', async () => {
    const sigmas = conditioned(30, 1e4);
    const at = uploadMat(gpu(), withSpectrum(120, 30, sigmas, 5));
    const { s } = await toHost(await exactSvd(gpu(), at));
    sigmas.forEach((sigma, i) => {
      expect(Math.abs(s[i] - sigma) / sigma, `σ${i}`).toBeLessThan(1e-2);
    });
    expect(spectrumError(s, Float64Array.from(sigmas))).toBeLessThan(1e-5);
  });
});

describe('randomized SVD', () => {
  it.each([0, 1, 2])(
    'finds the top subspace of a decaying spectrum with niter=%i',
    async (niter) => {
      const sigmas = decaying(80, 0.7);
      const a = withSpectrum(400, 200, sigmas, 8);
      const at = uploadMat(gpu(), a);
      const rank = 8;
      const svd = await toHost(
        await randomizedSvd(gpu(), at, { rank, niter, oversample: 8, seed: 1 }),
      );
      releaseTensor(gpu(), at);
      const exact = jacobiSvd(a);
      expect(svd.u.cols).toBe(rank);
      expect(orthogonalityError(svd.u)).toBeLessThan(1e-5);
      expect(orthogonalityError(svd.v)).toBeLessThan(1e-5);
      // Halko et al. §10: the error shrinks like (σ_(q+1)/σ_k)^(2·niter+1) with q = rank + oversample,
      // down to f32 rounding.
      const tolerance = Math.max(2 * (sigmas[16] / sigmas[rank - 1]) ** (2 * niter + 1), 1e-5);
      expect(subspaceGap(svd.u, columns(exact.u, 0, rank))).toBeLessThan(tolerance);
      expect(subspaceGap(svd.v, columns(exact.v, 0, rank))).toBeLessThan(tolerance);
      expect(spectrumError(svd.s, exact.s.slice(0, rank))).toBeLessThan(tolerance);
    },
  );

  it('returns exactly `rank` triplets as torch.svd_lowrank(A, q) does, for wide matrices too', async () => {
    const a = withSpectrum(60, 150, decaying(60, 0.5), 2);
    const at = uploadMat(gpu(), a);
    const svd = await toHost(await randomizedSvd(gpu(), at, { rank: 6 }));
    expect([svd.u.rows, svd.u.cols, svd.v.rows, svd.v.cols]).toEqual([60, 6, 150, 6]);
    expect(spectrumError(svd.s, jacobiSvd(a).s.slice(0, 6))).toBeLessThan(1e-4);
  });

  it('refuses a rank larger than the matrix', async () => {
    const at = uploadMat(gpu(), randomMat(5, 4, 1));
    await expect(randomizedSvd(gpu(), at, { rank: 5 })).rejects.toThrow(/rank must be 1…4, got 5/);
  });
});

describe('SVD of a low-rank product B·A without forming it', () => {
  it.each([
    [96, 16, 80],
    [300, 24, 200],
    [40, 40, 41],
  ])('B %i×%i · A %i×… matches the SVD of the dense product', async (m, r, n) => {
    const b = randomMat(m, r, m + r);
    const a = randomMat(r, n, r + n);
    const product = multiply(b, a);
    const bt = uploadMat(gpu(), b);
    const atensor = uploadMat(gpu(), a);
    const svd = await toHost(await lowRankProductSvd(gpu(), bt, atensor));
    releaseTensor(gpu(), bt, atensor);
    expect(spectrumError(svd.s, jacobiSvd(product).s.slice(0, r))).toBeLessThan(1e-5);
    expect(orthogonalityError(svd.u)).toBeLessThan(1e-5);
    expect(orthogonalityError(svd.v)).toBeLessThan(1e-5);
    expect(maxAbsDiff(reconstruct(svd), product) / frobenius(product)).toBeLessThan(1e-5);
  });

  it('truncates to a chosen rank with the optimal (Eckart–Young) error', async () => {
    const b = randomMat(64, 12, 3);
    const a = randomMat(12, 50, 4);
    const product = multiply(b, a);
    const bt = uploadMat(gpu(), b);
    const atensor = uploadMat(gpu(), a);
    const svd = await toHost(await lowRankProductSvd(gpu(), bt, atensor, 5));
    const reference = jacobiSvd(product).s;
    const optimal = Math.sqrt(reference.slice(5).reduce((acc, v) => acc + v * v, 0));
    const diff = mat(
      64,
      50,
      reconstruct(svd).data.map((v, i) => v - product.data[i]),
    );
    expect(Math.abs(frobenius(diff) - optimal) / optimal).toBeLessThan(1e-4);
  });

  it('handles a rank-deficient product (the same adapter merged twice)', async () => {
    const b1 = randomMat(50, 4, 1);
    const a1 = randomMat(4, 30, 2);
    // [B | B]·[A ; A] = 2·B·A: rank 4 with 8 stacked factors.
    const b = mat(50, 8);
    for (let i = 0; i < 50; i++)
      for (let j = 0; j < 8; j++) b.data[i * 8 + j] = b1.data[i * 4 + (j % 4)];
    const a = mat(8, 30);
    for (let i = 0; i < 8; i++)
      for (let j = 0; j < 30; j++) a.data[i * 30 + j] = a1.data[(i % 4) * 30 + j];
    const product = multiply(b, a);
    const svd = await toHost(
      await lowRankProductSvd(gpu(), uploadMat(gpu(), b), uploadMat(gpu(), a)),
    );
    expect(maxAbsDiff(reconstruct(svd), product) / frobenius(product)).toBeLessThan(1e-5);
    expect(Math.max(...svd.s.slice(4)) / svd.s[0]).toBeLessThan(1e-5);
    expect(orthogonalityError(columns(svd.u, 0, 4))).toBeLessThan(1e-5);
  });
});
