import { describe, expect, it } from 'vitest';
import { releaseTensor } from '../gpu/tensor.ts';
import { useGpu } from '../testing/gpu.ts';
import { conditioned, randomMat, withSpectrum } from './cpu/generate.ts';
import { readMat, uploadMat } from './host.ts';
import { frobenius, mat, maxAbsDiff, multiply, orthogonalityError, type Mat } from './cpu/dense.ts';
import { householderQr } from './cpu/qr.ts';
import { qr } from './qr.ts';

const gpu = useGpu();

async function factor(a: Mat) {
  const at = uploadMat(gpu(), a);
  const result = await qr(gpu(), at);
  const q = await readMat(gpu(), result.q);
  releaseTensor(gpu(), at, result.q);
  return {
    q,
    r: result.r,
    passes: result.passes,
    residual: maxAbsDiff(multiply(q, result.r), a) / frobenius(a),
  };
}

describe('QR (iterated CholeskyQR on the GPU)', () => {
  it.each([
    [1, 1],
    [7, 3],
    [64, 64],
    [257, 13],
    [1000, 64],
    [3000, 8],
  ])('%i×%i: A = QR with orthonormal Q', async (m, k) => {
    const a = randomMat(m, k, m * 7 + k);
    const { q, r, residual } = await factor(a);
    expect(residual).toBeLessThan(1e-6);
    expect(orthogonalityError(q)).toBeLessThan(5e-6);
    for (let i = 0; i < k; i++) for (let j = 0; j < i; j++) expect(r.data[i * k + j]).toBe(0);
  });

  it.each([1e2, 1e4, 1e6])('stays orthonormal for condition number %d', async (condition) => {
    const a = withSpectrum(500, 40, conditioned(40, condition), 3);
    const { q, residual, passes } = await factor(a);
    expect(orthogonalityError(q)).toBeLessThan(5e-6);
    expect(residual).toBeLessThan(1e-6);
    expect(passes).toBeLessThanOrEqual(6);
  });

  it('matches Householder R up to f32 rounding', async () => {
    const a = randomMat(300, 20, 11);
    const { r } = await factor(a);
    const reference = householderQr(a).r;
    expect(maxAbsDiff(r, reference) / frobenius(reference)).toBeLessThan(1e-5);
  });

  it('handles rank-deficient input: an orthonormal completion, A = QR still', async () => {
    const a = withSpectrum(200, 12, [5, 4, 3, 2, 1, 0, 0, 0, 0, 0, 0, 0], 9);
    const { q, residual } = await factor(a);
    expect(residual).toBeLessThan(1e-6);
    expect(orthogonalityError(q)).toBeLessThan(5e-6);
  });

  it('refuses wide matrices', async () => {
    const at = uploadMat(gpu(), mat(3, 5));
    await expect(qr(gpu(), at)).rejects.toThrow(/needs rows ≥ columns, got \[3×5\]/);
  });
});
