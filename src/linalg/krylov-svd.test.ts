// The block Krylov truncated SVD on the GPU and in its f64 CPU reference, against dense Jacobi.
// Its accuracy on the flat spectra of merges is checked where merges use it (merge/truncation.test.ts).
import { describe, expect, it } from 'vitest';
import { releaseTensor } from '../gpu/tensor.ts';
import { useGpu } from '../testing/gpu.ts';
import { columns, mat, multiply, orthogonalityError, transpose, type Mat } from './cpu/dense.ts';
import { decaying, randomMat, withSpectrum } from './cpu/generate.ts';
import { krylovSvdCpu, type KrylovSvdOptions } from './cpu/krylov-svd.ts';
import { jacobiSvd, type Svd } from './cpu/svd.ts';
import { relativeNormError } from './compare.ts';
import { readMat, uploadMat } from './host.ts';
import { krylovSvd } from './krylov-svd.ts';

const gpu = useGpu();

type Implementation = (a: Mat, options: KrylovSvdOptions) => Promise<Svd>;

const IMPLEMENTATIONS: [string, Implementation][] = [
  [
    'GPU',
    async (a, options) => {
      const at = uploadMat(gpu(), a);
      try {
        const { u, s, v } = await krylovSvd(gpu(), at, options);
        const host = { u: await readMat(gpu(), u), s, v: await readMat(gpu(), v) };
        releaseTensor(gpu(), u, v);
        return host;
      } finally {
        releaseTensor(gpu(), at);
      }
    },
  ],
  // Called in a promise: a refusal rejects, as the GPU's does.
  ['CPU reference', (a, options) => Promise.resolve().then(() => krylovSvdCpu(a, options))],
];

function reconstruct({ u, s, v }: Svd): Mat {
  const us = mat(u.rows, u.cols, u.data);
  for (let i = 0; i < us.rows; i++)
    for (let j = 0; j < us.cols; j++) us.data[i * us.cols + j] *= s[j];
  return multiply(us, transpose(v));
}

function exactTruncation(a: Mat, k: number): Mat {
  const { u, s, v } = jacobiSvd(a);
  return reconstruct({ u: columns(u, 0, k), s: s.slice(0, k), v: columns(v, 0, k) });
}

// Short sides are taken whole unless `wholeSide` says otherwise: both routes on the same matrices.
const ROUTES: [string, Partial<KrylovSvdOptions>][] = [
  ['a basis grown block by block', { wholeSide: 0 }],
  ['the short side taken whole', {}],
];

describe.each(IMPLEMENTATIONS)('block Krylov truncated SVD (%s)', (_, svd) => {
  describe.each(ROUTES)('on %s', (__, route) => {
    it('returns `rank` orthonormal triplets of the exact truncation, for wide matrices too', async () => {
      const a = withSpectrum(61, 150, decaying(61, 0.9), 2);
      const result = await svd(a, { rank: 6, seed: 1, ...route });
      expect([result.u.rows, result.u.cols, result.v.rows, result.v.cols]).toEqual([61, 6, 150, 6]);
      expect(orthogonalityError(result.u)).toBeLessThan(1e-5);
      expect(orthogonalityError(result.v)).toBeLessThan(1e-5);
      const exact = jacobiSvd(a).s;
      result.s.forEach((sigma, i) => {
        expect(Math.abs(sigma - exact[i])).toBeLessThan(1e-5);
      });
      expect(relativeNormError(reconstruct(result).data, exactTruncation(a, 6).data)).toBeLessThan(
        1e-4,
      );
    });

    it('is exact on a matrix with a zero row, whose range misses a direction', async () => {
      // Grown: 14 + 14 columns, then the last 9 of R³⁷, where the zero row leaves only 8
      // directions in A's range: the ninth is rounding, which the block must drop, not normalise.
      const a = randomMat(37, 50, 1);
      a.data.fill(0, 5 * 50, 6 * 50);
      const result = await svd(a, { rank: 4, seed: 2, ...route });
      expect(orthogonalityError(result.u)).toBeLessThan(1e-5);
      expect(relativeNormError(reconstruct(result).data, exactTruncation(a, 4).data)).toBeLessThan(
        1e-5,
      );
    });

    it('finds a rank-deficient matrix whole, and zeros in the zero matrix', async () => {
      const a = withSpectrum(90, 70, [3, 2, 1], 6);
      const result = await svd(a, { rank: 8, seed: 3, ...route });
      expect(Math.max(...result.s.slice(3))).toBeLessThan(1e-5);
      expect(relativeNormError(reconstruct(result).data, a.data)).toBeLessThan(1e-5);
      const zero = await svd(mat(40, 30), { rank: 4, ...route });
      expect(zero.s).toHaveLength(4);
      expect(Math.max(...zero.s)).toBeLessThan(1e-30);
      expect(zero.u.data.every(Number.isFinite) && zero.v.data.every(Number.isFinite)).toBe(true);
    });
  });

  it('refuses a rank larger than the matrix', async () => {
    await expect(svd(randomMat(5, 4, 1), { rank: 5 })).rejects.toThrow(/rank must be 1…4, got 5/);
  });
});
