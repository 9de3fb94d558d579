// Dense merges end in a truncated SVD, which must give the exact rank-k truncation of the merged
// ΔW (PEFT truncates with a full SVD), also on the flat spectra that TIES and DARE leave, where a
// fixed number of power iterations stops far from it. Checked on both MergeComputes against a
// dense f64 Jacobi SVD, on shapes that are not multiples of any tile.
import { describe, expect, it } from 'vitest';
import { relativeNormError } from '../linalg/compare.ts';
import { identity, mat, multiply, type Mat } from '../linalg/cpu/dense.ts';
import { randomMat, withSpectrum } from '../linalg/cpu/generate.ts';
import { jacobiSvd } from '../linalg/cpu/svd.ts';
import { mergeComputes, useGpu } from '../testing/gpu.ts';
import { mergeEntrywiseCpu } from './cpu/entrywise.ts';
import { PLAIN_SUM, type Consensus } from './entrywise.ts';
import type { LowRank } from './low-rank.ts';

const gpu = useGpu();

const RANK = 8;
const TIES: Consensus = { elect: 'total', weighted: false, divisor: 'count' };

function lowRank(b: Mat, a: Mat): LowRank {
  return {
    out: b.rows,
    in: a.cols,
    rank: b.cols,
    b: Float32Array.from(b.data),
    a: Float32Array.from(a.data),
  };
}

/** σᵢ = 0.98^i: neighbours 2 % apart, no gap anywhere, the tail as large as the head. */
function flatDense(): Mat {
  const sigmas = Array.from({ length: 150 }, (_, i) => 0.98 ** i);
  return withSpectrum(203, 150, sigmas, 5);
}

/** TIES of two random rank-12 ΔW: 30 % of each kept, signs elected; rank 8 cuts a flat part. */
function tiesLike(): Mat {
  const [out, width] = [157, 203];
  const parts = [12, 12].map((r, i) => {
    const product = multiply(randomMat(out, r, 10 + i), randomMat(r, width, 20 + i));
    return Float32Array.from(product.data);
  });
  const merged = mergeEntrywiseCpu(
    parts.map((x, i) => ({
      x,
      task: { weight: 1, sparsify: { kind: 'magnitude', density: 0.3 }, seed: i },
    })),
    TIES,
    width,
  );
  return mat(out, width, Float32Array.from(merged));
}

/** The best rank-k approximation, in f64. */
function exactTruncation(d: Mat, k: number): Float64Array {
  const { u, s, v } = jacobiSvd(d);
  const out = new Float64Array(d.rows * d.cols);
  for (let j = 0; j < k; j++)
    for (let o = 0; o < d.rows; o++) {
      const c = u.data[o * u.cols + j] * s[j];
      for (let i = 0; i < d.cols; i++) out[o * d.cols + i] += c * v.data[i * v.cols + j];
    }
  return out;
}

const CASES: [string, () => Mat][] = [
  ['a dense 203×150 matrix with a flat, gap-free spectrum', flatDense],
  ['a sparse TIES merge of two rank-12 157×203 matrices', tiesLike],
];

describe.each(mergeComputes(gpu))('the truncation of a dense merge on the %s', (_, compute) => {
  it.each(CASES)('is the exact rank-8 truncation of %s', async (_, make) => {
    const d = make();
    // One task, the matrix itself as B·I: the product is exact, so ΔW is d on either side.
    const { factors } = await compute().mergeDense({
      out: d.rows,
      in: d.cols,
      parts: [lowRank(d, identity(d.cols))],
      tasks: [{ weight: 1, sparsify: { kind: 'none' }, seed: 0 }],
      consensus: PLAIN_SUM,
      rule: RANK,
      cap: Math.min(d.rows, d.cols),
      seed: 3,
    });
    expect(factors.rank).toBe(RANK);
    const got = multiply(mat(d.rows, RANK, factors.b), mat(RANK, d.cols, factors.a));
    expect(relativeNormError(got.data, exactTruncation(d, RANK))).toBeLessThan(1e-4);
  });
});
