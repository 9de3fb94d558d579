// The data-aware inits (EVA, CorDA, LoRA-GA) against f64 CPU references: the statistics they
// read, the ends of the spectrum they take, and the model's output unchanged at step 0.
import { describe, expect, it } from 'vitest';
import { readF32 } from '../gpu/readback.ts';
import { releaseTensor, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import { relativeNormError } from '../linalg/compare.ts';
import { mat, multiply, transpose, type Mat } from '../linalg/cpu/dense.ts';
import { jacobiSvd } from '../linalg/cpu/svd.ts';
import { gaussian } from '../linalg/random.ts';
import { affine } from '../linalg/elementwise.ts';
import { createGpuModel, createRunner } from '../model/forward.ts';
import { useGpu } from '../testing/gpu.ts';
import { randomWeights, tinyConfig } from '../testing/tiny-model.ts';
import {
  inputCovariances,
  initStatistics,
  releaseCovariances,
  weightGradients,
} from '../train/statistics.ts';
import { batchLoss, type TokenBatch } from '../train/step.ts';
import { TrainableAdapter } from '../train/trainable.ts';
import {
  adaptedModules,
  TARGET_PRESETS,
  type AdaptedModule,
  type InitMethod,
  type LoraSpec,
} from './config.ts';
import { initEntry } from './inits.ts';
import { cordaFactors } from './inits/corda.ts';
import { covarianceTrace, topComponents, type Components } from './inits/components.ts';
import { evaRanks } from './inits/eva.ts';
import { loraGaFactors } from './inits/lora-ga.ts';

const gpu = useGpu();
const config = tinyConfig({ hiddenSize: 16, intermediateSize: 20, headDim: 8 });
const weights = randomWeights(config, 31);

function spec(init: InitMethod): LoraSpec {
  return {
    rank: 2,
    alpha: 4,
    rslora: false,
    targets: TARGET_PRESETS['all-linear'],
    dropout: 0,
    init,
  };
}

/** Three batches of two sequences of 6 tokens. */
const batches: TokenBatch[] = [0, 1, 2].map((b) => ({
  ids: Uint32Array.from({ length: 12 }, (_, i) => (b * 7 + i * 5 + 1) % config.vocabSize),
  targets: Int32Array.from({ length: 12 }, (_, i) =>
    i % 6 === 5 ? -1 : (b * 3 + i * 7 + 2) % config.vocabSize,
  ),
  seqLen: 6,
}));

const read = async (t: Tensor, rows: number, cols: number) =>
  mat(rows, cols, await readF32(gpu(), t));

describe('data-aware inits leave the output unchanged at step 0', () => {
  const tokens = [1, 5, 9, 3, 17, 2, 11];
  for (const init of ['eva', 'corda_ipm', 'corda_kpm', 'lora_ga'] as const)
    it(init, async () => {
      const model = createGpuModel(gpu(), config, weights);
      const modules = adaptedModules(config, spec(init));
      const { statistic } = initEntry(init);
      const stats = await initStatistics(gpu(), model.base, batches, modules, statistic, 1);
      const adapter = await TrainableAdapter.create(
        gpu(),
        model.base,
        spec(init),
        1,
        undefined,
        stats.statistics,
      );
      stats.release();
      const runner = createRunner(gpu(), adapter.view(model.transformer));
      try {
        const base = await model.forwardAll(tokens, 0);
        expect(relativeNormError(await runner.forwardAll(tokens, 0), base)).toBeLessThan(1e-5);
        const f = (await adapter.read()).get(modules[0].path)!;
        // The adapter is not trivially zero: A carries the data's directions.
        expect(Math.hypot(...f.a)).toBeGreaterThan(0.1);
        if (init !== 'eva') expect(Math.hypot(...f.b)).toBeGreaterThan(1e-3);
        // EVA spends exactly the rank budget, at least one per module.
        const ranks = adapter.modules.map((m) => m.rank);
        expect(ranks.reduce((a, b) => a + b, 0)).toBe(2 * modules.length);
        expect(Math.min(...ranks)).toBeGreaterThanOrEqual(1);
      } finally {
        runner.dispose();
        adapter.dispose();
        model.dispose();
      }
    });
});

describe('statistics', () => {
  it('input covariances sum xᵀx over every batch, and EVA takes their top eigenvectors', async () => {
    const model = createGpuModel(gpu(), config, weights);
    const modules = adaptedModules(config, spec('eva'));
    // The inputs themselves, gathered by the backward pass's observer (another code path).
    const inputs = new Map<string, Tensor[]>();
    for (const data of batches)
      await batchLoss(gpu(), model.base, data, {
        grads: new Map(),
        accumulate: false,
        gradScale: 1,
        observe: (batch, path, _g, x) => {
          inputs.set(path, [...(inputs.get(path) ?? []), affine(batch, x, 1)]);
        },
      });
    const covariances = await inputCovariances(gpu(), model.base, batches, modules);
    try {
      for (const m of modules.filter((x) => x.layer === 1)) {
        const rows = await Promise.all(inputs.get(m.path)!.map((t) => readF32(gpu(), t)));
        const x = mat(36, m.in, Float64Array.from(rows.flatMap((r) => Array.from(r))));
        const expected = multiply(transpose(x), x);
        const got = await read(covariances.get(m.path)!, m.in, m.in);
        expect(relativeNormError(got.data, expected.data), m.path).toBeLessThan(1e-5);
        // tr(C) = Σ‖x‖², the denominator of EVA's explained variance.
        const squares = x.data.reduce((t, v) => t + v * v, 0);
        expect((await covarianceTrace(gpu(), covariances.get(m.path)!)) / squares).toBeCloseTo(
          1,
          5,
        );
        // EVA's components: the top right-singular vectors of the stacked inputs.
        const c = await topComponents(gpu(), covariances.get(m.path)!, 3, 0);
        const { s, v } = jacobiSvd(x);
        for (let j = 0; j < 2; j++) {
          let dot = 0;
          for (let i = 0; i < m.in; i++) dot += c.vectors[j * m.in + i] * v.data[i * v.cols + j];
          expect(Math.abs(dot), `${m.path} component ${j}`).toBeGreaterThan(0.999);
          expect(c.values[j] / s[j] ** 2).toBeCloseTo(1, 3);
        }
      }
    } finally {
      releaseCovariances(gpu(), covariances);
      for (const list of inputs.values()) releaseTensor(gpu(), ...list);
      model.dispose();
    }
  });

  it('the full-weight gradient agrees with the LoRA gradient of B: ∂L/∂B = s·G·Aᵀ at B = 0', async () => {
    const model = createGpuModel(gpu(), config, weights);
    const lora = spec('lora');
    const modules = adaptedModules(config, lora);
    const gradients = await weightGradients(gpu(), model.base, batches, modules);
    const adapter = await TrainableAdapter.create(gpu(), model.base, lora, 3);
    try {
      const tokens = batches.reduce((n, b) => n + b.targets.filter((t) => t >= 0).length, 0);
      for (const [i, data] of batches.entries())
        await batchLoss(gpu(), adapter.view(model.base), data, {
          grads: adapter.grads,
          accumulate: i > 0,
          gradScale: 1 / tokens,
        });
      const factors = await adapter.read();
      for (const m of modules) {
        const g = await read(gradients.get(m.path)!, m.out, m.in);
        const a = mat(m.rank, m.in, factors.get(m.path)!.a);
        const expected = multiply(g, transpose(a)).data.map((v) => v * m.scale);
        const got = await readF32(gpu(), adapter.grads.get(m.path)!.b!);
        expect(relativeNormError(got, expected), m.path).toBeLessThan(1e-4);
      }
    } finally {
      adapter.dispose();
      releaseTensor(gpu(), ...gradients.values());
      model.dispose();
    }
  });
});

describe('factor formulas against the CPU', () => {
  const m: AdaptedModule = {
    path: 'p',
    layer: 0,
    module: 'q_proj',
    rank: 2,
    alpha: 4,
    scale: 2,
    in: 9,
    out: 12,
  };
  const W = mat(12, 9, gaussian(108, 4));

  it('CorDA: s·B·A·C is the top (IPM) or bottom (KPM) rank-r part of W·C (C damped as PEFT)', async () => {
    const X = mat(30, 9, gaussian(270, 5));
    const C = multiply(transpose(X), X);
    const w = uploadTensor(gpu(), Float32Array.from(W.data), [12, 9], 'f32', 'W');
    const c = uploadTensor(gpu(), Float32Array.from(C.data), [9, 9], 'f32', 'C');
    // Well conditioned: C/mean(diag C) + 0.01·I, the first damping, is the one used.
    let mean = 0;
    for (let i = 0; i < 9; i++) mean += C.data[i * 9 + i] / 9;
    const damped = mat(
      9,
      9,
      C.data.map((x) => x / mean),
    );
    for (let i = 0; i < 9; i++) damped.data[i * 9 + i] += 0.01;
    const { u, s, v } = jacobiSvd(multiply(W, damped));
    for (const mode of ['ipm', 'kpm'] as const) {
      const f = await cordaFactors(gpu(), m, w, c, mode);
      const ba = multiply(await read(f.b, 12, 2), await read(f.a, 2, 9));
      const got = multiply(ba, damped).data.map((x) => x * m.scale);
      const from = mode === 'ipm' ? 0 : s.length - 2;
      const expected = new Float64Array(12 * 9);
      for (let j = from; j < from + 2; j++)
        for (let o = 0; o < 12; o++)
          for (let i = 0; i < 9; i++)
            expected[o * 9 + i] += u.data[o * u.cols + j] * s[j] * v.data[i * v.cols + j];
      expect(relativeNormError(got, expected), mode).toBeLessThan(1e-4);
      // The factors do not depend on how many tokens C summed over (C's scale): A and B stay
      // balanced, or AdamW's equal-sized steps would wreck the small one.
      const big = uploadTensor(
        gpu(),
        Float32Array.from(C.data, (x) => 1e4 * x),
        [9, 9],
        'f32',
        'C',
      );
      const g = await cordaFactors(gpu(), m, w, big, mode);
      expect(relativeNormError(await readF32(gpu(), g.a), await readF32(gpu(), f.a))).toBeLessThan(
        1e-4,
      );
      expect(relativeNormError(await readF32(gpu(), g.b), await readF32(gpu(), f.b))).toBeLessThan(
        1e-4,
      );
      releaseTensor(gpu(), f.a, f.b, g.a, g.b, big);
    }
    releaseTensor(gpu(), w, c);
  });

  it('LoRA-GA: A = top-r right vectors of G, B = left vectors r+1…2r, both scaled by out^¼/√16', async () => {
    // A gradient with well separated singular values, so each vector is defined (up to sign).
    const G = multiply(
      multiply(mat(12, 9, gaussian(108, 6)), mat(9, 9, gaussian(81, 7))),
      mat(9, 9, gaussian(81, 8)),
    );
    const g = uploadTensor(gpu(), Float32Array.from(G.data), [12, 9], 'f32', 'G');
    const f = await loraGaFactors(gpu(), m, g, 1);
    const a = await read(f.a, 2, 9);
    const b = await read(f.b, 12, 2);
    const { u, v } = jacobiSvd(G);
    const scale = 12 ** 0.25 / 4;
    const cos = (x: Mat, row: boolean, j: number, y: Mat, k: number, n: number) => {
      let dot = 0;
      for (let i = 0; i < n; i++)
        dot += (row ? x.data[j * x.cols + i] : x.data[i * x.cols + j]) * y.data[i * y.cols + k];
      return Math.abs(dot) / scale;
    };
    for (let j = 0; j < 2; j++) {
      expect(cos(a, true, j, v, j, 9)).toBeCloseTo(1, 3);
      expect(cos(b, false, j, u, 2 + j, 12)).toBeCloseTo(1, 3);
    }
    releaseTensor(gpu(), g, f.a, f.b);
  });

  it('EVA redistributes the rank budget by explained variance, alpha following the rank', () => {
    const modules = ['a', 'b', 'c'].map((path) => ({ ...m, path, rank: 2, alpha: 4, scale: 2 }));
    const comps = (values: number[]): Components => ({
      vectors: new Float32Array(values.length * 9),
      values: Float64Array.from(values),
      trace: 10,
    });
    const components = new Map([
      ['a', comps([5, 3, 1, 0.5])],
      ['b', comps([2, 0.1, 0.05, 0.01])],
      ['c', comps([4, 2.5, 2, 0.2])],
    ]);
    const ranks = evaRanks(modules, components, false);
    expect(ranks.map((x) => x.rank)).toEqual([2, 1, 3]);
    for (const x of ranks) expect(x.scale).toBe(2);
  });
});
