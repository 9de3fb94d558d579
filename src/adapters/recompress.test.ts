// SVD recompression: exact at full rank, the best rank-k approximation below it, with the
// dropped energy reported — all against a dense CPU SVD of ΔW.
import { describe, expect, it } from 'vitest';
import { relativeNormError } from '../linalg/compare.ts';
import { mat, multiply } from '../linalg/cpu/dense.ts';
import { jacobiSvd } from '../linalg/cpu/svd.ts';
import { useGpu } from '../testing/gpu.ts';
import { randomArray, seededRandom } from '../testing/random.ts';
import type { ExportAdapter, ExportModule } from './peft.ts';
import { recompress } from './recompress.ts';

const gpu = useGpu();

function module(
  path: string,
  out: number,
  inputs: number,
  rank: number,
  seed: number,
): ExportModule {
  const random = seededRandom(seed);
  return {
    path,
    layer: 0,
    rank,
    alpha: 2 * rank,
    in: inputs,
    out,
    a: randomArray(random, rank * inputs),
    b: randomArray(random, out * rank),
  };
}

/** s·B·A as a dense host matrix. */
function delta(m: ExportModule, s: number) {
  const d = multiply(mat(m.out, m.rank, m.b), mat(m.rank, m.in, m.a));
  return mat(
    m.out,
    m.in,
    d.data.map((v) => v * s),
  );
}

describe('recompress', () => {
  const modules = [module('m.q_proj', 40, 33, 12, 1), module('m.down_proj', 29, 57, 12, 2)];
  const adapter: ExportAdapter = {
    modules,
    rank: 12,
    alpha: 24,
    rslora: false,
    targets: ['q_proj', 'down_proj'],
    dropout: 0,
    initLoraWeights: true,
    baseModel: 'x',
    numLayers: 1,
  };

  it('keeps ΔW at full rank and loses nothing', async () => {
    const { adapter: out, totalLostEnergy } = await recompress(gpu(), adapter, 12);
    expect(totalLostEnergy).toBeLessThan(1e-6);
    expect(out).toMatchObject({ rank: 12, alpha: 12, rslora: false });
    for (const [i, m] of out.modules.entries())
      expect(relativeNormError(delta(m, 1).data, delta(modules[i], 2).data)).toBeLessThan(1e-5);
  });

  it('is the best rank-k approximation below it, and reports the energy dropped', async () => {
    const k = 5;
    const { adapter: out, lostEnergy } = await recompress(gpu(), adapter, k);
    for (const [i, m] of out.modules.entries()) {
      const dense = delta(modules[i], 2);
      const { u, s, v } = jacobiSvd(dense);
      const best = mat(dense.rows, dense.cols);
      for (let r = 0; r < dense.rows; r++)
        for (let c = 0; c < dense.cols; c++) {
          let sum = 0;
          for (let j = 0; j < k; j++) sum += u.data[r * u.cols + j] * s[j] * v.data[c * v.cols + j];
          best.data[r * dense.cols + c] = sum;
        }
      expect(m.rank).toBe(k);
      expect(relativeNormError(delta(m, 1).data, best.data)).toBeLessThan(1e-4);
      const total = s.reduce((t, x) => t + x * x, 0);
      const tail = s.slice(k).reduce((t, x) => t + x * x, 0);
      expect(lostEnergy[i].fraction).toBeCloseTo(tail / total, 5);
    }
  });
});
