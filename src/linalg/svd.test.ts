import { describe, expect, it } from 'vitest';
import { releaseTensor, type Tensor } from '../gpu/tensor.ts';
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
import { jacobiSvd, lowRankProductSvdCpu, randomizedSvdCpu } from './cpu/svd.ts';
import {
  exactSvd,
  lowRankProductSvd,
  randomizedSvd,
  type RandomizedSvdOptions,
  type SvdResult,
} from './svd.ts';

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

/** The same contract on the GPU and in its f64 CPU reference, both checked against dense Jacobi. */
interface Implementation {
  randomized(a: Mat, options: RandomizedSvdOptions): Promise<HostSvd>;
  lowRankProduct(b: Mat, a: Mat, rank?: number): Promise<HostSvd>;
}

async function onGpu(inputs: Mat[], f: (...t: Tensor[]) => Promise<SvdResult>): Promise<HostSvd> {
  const tensors = inputs.map((m) => uploadMat(gpu(), m));
  try {
    return await toHost(await f(...tensors));
  } finally {
    releaseTensor(gpu(), ...tensors);
  }
}

const IMPLEMENTATIONS: [string, Implementation][] = [
  [
    'GPU',
    {
      randomized: (a, options) => onGpu([a], (t) => randomizedSvd(gpu(), t, options)),
      lowRankProduct: (b, a, rank) =>
        onGpu([b, a], (bt, at) => lowRankProductSvd(gpu(), bt, at, rank)),
    },
  ],
  [
    'CPU reference',
    {
      // Called in a promise: a refusal rejects, as the GPU's does.
      randomized: (a, options) => Promise.resolve().then(() => randomizedSvdCpu(a, options)),
      lowRankProduct: (b, a, rank) =>
        Promise.resolve().then(() => lowRankProductSvdCpu(b, a, rank)),
    },
  ],
];

describe.each(IMPLEMENTATIONS)('randomized SVD (%s)', (_, svd) => {
  it.each([0, 1, 2])(
    'finds the top subspace of a decaying spectrum with niter=%i',
    async (niter) => {
      const sigmas = decaying(80, 0.7);
      const a = withSpectrum(400, 200, sigmas, 8);
      const rank = 8;
      const result = await svd.randomized(a, { rank, niter, oversample: 8, seed: 1 });
      const exact = jacobiSvd(a);
      expect(result.u.cols).toBe(rank);
      expect(orthogonalityError(result.u)).toBeLessThan(1e-5);
      expect(orthogonalityError(result.v)).toBeLessThan(1e-5);
      // Halko et al. §10: the error shrinks like (σ_(q+1)/σ_k)^(2·niter+1) with q = rank + oversample,
      // down to f32 rounding.
      const tolerance = Math.max(2 * (sigmas[16] / sigmas[rank - 1]) ** (2 * niter + 1), 1e-5);
      expect(subspaceGap(result.u, columns(exact.u, 0, rank))).toBeLessThan(tolerance);
      expect(subspaceGap(result.v, columns(exact.v, 0, rank))).toBeLessThan(tolerance);
      expect(spectrumError(result.s, exact.s.slice(0, rank))).toBeLessThan(tolerance);
    },
  );

  it('returns exactly `rank` triplets as torch.svd_lowrank(A, q) does, for wide matrices too', async () => {
    const a = withSpectrum(60, 150, decaying(60, 0.5), 2);
    const result = await svd.randomized(a, { rank: 6 });
    expect([result.u.rows, result.u.cols, result.v.rows, result.v.cols]).toEqual([60, 6, 150, 6]);
    expect(spectrumError(result.s, jacobiSvd(a).s.slice(0, 6))).toBeLessThan(1e-4);
  });

  it('refuses a rank larger than the matrix', async () => {
    await expect(svd.randomized(randomMat(5, 4, 1), { rank: 5 })).rejects.toThrow(
      /rank must be 1…4, got 5/,
    );
  });
});

it('the GPU and the CPU reference draw the same Ω: the same rough subspace without power iterations', async () => {
  // A flat spectrum: one pass of the range finder lands far from the top subspace, at a
  // place only Ω decides. Both implementations must land at the same place.
  const a = randomMat(120, 90, 17);
  const options = { rank: 5, niter: 0, seed: 9 };
  const [gpuResult, cpuResult] = [
    await IMPLEMENTATIONS[0][1].randomized(a, options),
    await IMPLEMENTATIONS[1][1].randomized(a, options),
  ];
  expect(subspaceGap(gpuResult.u, columns(jacobiSvd(a).u, 0, 5))).toBeGreaterThan(0.3);
  expect(subspaceGap(gpuResult.u, cpuResult.u)).toBeLessThan(1e-4);
  expect(spectrumError(gpuResult.s, cpuResult.s)).toBeLessThan(1e-5);
});

describe.each(IMPLEMENTATIONS)(
  'SVD of a low-rank product B·A without forming it (%s)',
  (_, svd) => {
    it.each([
      [96, 16, 80],
      [300, 24, 200],
      [40, 40, 41],
    ])('B %i×%i · A %i×… matches the SVD of the dense product', async (m, r, n) => {
      const b = randomMat(m, r, m + r);
      const a = randomMat(r, n, r + n);
      const product = multiply(b, a);
      const result = await svd.lowRankProduct(b, a);
      expect(spectrumError(result.s, jacobiSvd(product).s.slice(0, r))).toBeLessThan(1e-5);
      expect(orthogonalityError(result.u)).toBeLessThan(1e-5);
      expect(orthogonalityError(result.v)).toBeLessThan(1e-5);
      expect(maxAbsDiff(reconstruct(result), product) / frobenius(product)).toBeLessThan(1e-5);
    });

    it('truncates to a chosen rank with the optimal (Eckart–Young) error', async () => {
      const b = randomMat(64, 12, 3);
      const a = randomMat(12, 50, 4);
      const product = multiply(b, a);
      const result = await svd.lowRankProduct(b, a, 5);
      const reference = jacobiSvd(product).s;
      const optimal = Math.sqrt(reference.slice(5).reduce((acc, v) => acc + v * v, 0));
      const diff = mat(
        64,
        50,
        reconstruct(result).data.map((v, i) => v - product.data[i]),
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
      const result = await svd.lowRankProduct(b, a);
      expect(maxAbsDiff(reconstruct(result), product) / frobenius(product)).toBeLessThan(1e-5);
      expect(Math.max(...result.s.slice(4)) / result.s[0]).toBeLessThan(1e-5);
      expect(orthogonalityError(columns(result.u, 0, 4))).toBeLessThan(1e-5);
    });
  },
);
