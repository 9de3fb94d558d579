// Intruder dimensions: the GPU count agrees with the f64 reference on random weights of both
// orientations; a large update along a direction spread evenly over W₀'s singular vectors is
// found as an intruder, an update along W₀'s own top direction is not; an adapter's modules are
// measured against the model's weights, and DoRA is refused with the reason.
import { describe, expect, it } from 'vitest';
import { readPeftAdapter } from '../adapters/peft-read.ts';
import { releaseTensor } from '../gpu/tensor.ts';
import { mat, multiply, type Mat } from '../linalg/cpu/dense.ts';
import { randomMat, withSpectrum, decaying } from '../linalg/cpu/generate.ts';
import { jacobiSvd } from '../linalg/cpu/svd.ts';
import { uploadMat } from '../linalg/host.ts';
import { createGpuModel } from '../model/forward.ts';
import { useGpu } from '../testing/gpu.ts';
import { randomAdapterFiles } from '../testing/random-adapter.ts';
import { randomWeights, tinyConfig } from '../testing/tiny-model.ts';
import { adapterIntrusions, intrusion, intrusionCpu, INTRUDER_DEFAULTS } from './intruders.ts';

const gpu = useGpu();

/** W + c·x·yᵀ. */
function plusRankOne(w: Mat, x: ArrayLike<number>, y: ArrayLike<number>, c: number): Mat {
  return mat(
    w.rows,
    w.cols,
    w.data.map((v, i) => v + c * x[Math.floor(i / w.cols)] * y[i % w.cols]),
  );
}

async function onGpu(w0: Mat, wt: Mat, settings = INTRUDER_DEFAULTS) {
  const [a, b] = [uploadMat(gpu(), w0), uploadMat(gpu(), wt)];
  try {
    return await intrusion(gpu(), a, b, settings);
  } finally {
    releaseTensor(gpu(), a, b);
  }
}

describe('intruder dimensions', () => {
  it.each([
    [17, 11],
    [11, 17],
  ])('agree with the f64 reference on a %i×%i weight', async (rows, cols) => {
    const w0 = randomMat(rows, cols, rows);
    const delta = multiply(randomMat(rows, 2, 3), randomMat(2, cols, 4));
    const wt = mat(
      rows,
      cols,
      w0.data.map((v, i) => v + 0.8 * delta.data[i]),
    );
    const settings = { k: 6, threshold: 0.6 };
    const expected = intrusionCpu(w0, wt, settings);
    const got = await onGpu(w0, wt, settings);
    expect(got.count).toBe(expected.count);
    got.similarities.forEach((s, i) => {
      expect(s).toBeCloseTo(expected.similarities[i], 4);
    });
  });

  it('find a strong new direction, and not one of W₀’s own', async () => {
    const w0 = withSpectrum(16, 12, decaying(12, 0.2), 7);
    const { u, s } = jacobiSvd(w0);
    // Spread evenly over the 12 left singular vectors: |cos| = 1/√12 ≈ 0.29 with each.
    const spread = Array.from({ length: 16 }, (_, i) => {
      let sum = 0;
      for (let j = 0; j < 12; j++) sum += u.data[i * 12 + j];
      return sum / Math.sqrt(12);
    });
    const y = Array.from({ length: 12 }, (_, j) => (j === 5 ? 1 : 0));
    const intruded = await onGpu(w0, plusRankOne(w0, spread, y, 10 * s[0]));
    expect(intruded.count).toBeGreaterThanOrEqual(1);
    expect(intruded.similarities[0]).toBeLessThan(0.35);
    // Unchanged, or grown along its own top direction: every top vector matches W₀'s.
    const top = Array.from({ length: 16 }, (_, i) => u.data[i * 12]);
    const v0 = jacobiSvd(w0).v;
    const topRight = Array.from({ length: 12 }, (_, j) => v0.data[j * 12]);
    for (const wt of [w0, plusRankOne(w0, top, topRight, s[0])]) {
      const same = await onGpu(w0, wt);
      expect(same.count).toBe(0);
      expect(Math.min(...same.similarities)).toBeGreaterThan(0.99);
    }
  });

  it('measure each module of an adapter against the model, and refuse DoRA', async () => {
    const config = tinyConfig({ hiddenSize: 16, intermediateSize: 20, headDim: 8 });
    const weights = randomWeights(config, 3);
    const files = randomAdapterFiles(config, {
      seed: 2,
      rank: 2,
      alpha: 4,
      range: 0.6,
      baseModel: 'tiny',
      modules: ['q_proj', 'down_proj'],
    });
    const adapter = readPeftAdapter(files, 'random');
    const model = createGpuModel(gpu(), config, weights);
    try {
      const progress: number[] = [];
      const got = await adapterIntrusions(
        gpu(),
        model.transformer,
        adapter,
        INTRUDER_DEFAULTS,
        (d) => progress.push(d),
      );
      expect(got.map((m) => m.path)).toEqual([...adapter.modules.keys()]);
      expect(progress.at(-1)).toBe(got.length);
      for (const { path, count, similarities } of got) {
        const m = adapter.modules.get(path);
        const w = weights.get(`${path}.weight`);
        if (!m || !w) throw new Error(path);
        const [rows, cols] = w.shape;
        const delta = multiply(mat(rows, m.rank, m.b), mat(m.rank, cols, m.a));
        const wt = mat(
          rows,
          cols,
          w.data.map((v, i) => v + m.scale * delta.data[i]),
        );
        const expected = intrusionCpu(mat(rows, cols, w.data), wt, INTRUDER_DEFAULTS);
        expect(count, path).toBe(expected.count);
        similarities.forEach((s, i) => {
          expect(s, path).toBeCloseTo(expected.similarities[i], 3);
        });
      }
      const dora = { ...adapter, details: { ...adapter.details, variant: 'dora' as const } };
      await expect(adapterIntrusions(gpu(), model.transformer, dora)).rejects.toThrow(
        /DoRA adapter, whose ΔW depends on the base weights/,
      );
    } finally {
      model.dispose();
    }
  });
});
