// The inits that train a core between B and A (src/train/core.ts): SVFit (B, A = W's top
// singular vectors, frozen; the core's diagonal trains: r numbers per module), LoRA-SB (B, A
// frozen from the gradient's SVD, the whole r × r core trains) and SORSA (B, A and the diagonal
// core = W's principal singular triplets, all trained against the residual, kept orthonormal by a
// regulariser). For each: the output is unchanged at step 0, the core and the trained factors have
// their true gradients (the core's masked to what trains), and the export — the plain LoRA B·C, A,
// converted for the original base where the init rewrote it — applied to that base is the
// trained model.
import { describe, expect, it } from 'vitest';
import {
  adaptedModules,
  TARGET_PRESETS,
  type InitMethod,
  type LoraSpec,
} from '../adapters/config.ts';
import { initEntry } from '../adapters/inits.ts';
import { adapterTerms, readPeftAdapter } from '../adapters/peft-read.ts';
import { readF32 } from '../gpu/readback.ts';
import { releaseTensor } from '../gpu/tensor.ts';
import { relativeNormError } from '../linalg/compare.ts';
import { mat, multiply, transpose } from '../linalg/cpu/dense.ts';
import { jacobiSvd } from '../linalg/cpu/svd.ts';
import { cpuBatchLoss, type CpuTerm } from '../model/cpu/reference.ts';
import { createGpuModel, createRunner } from '../model/forward.ts';
import type { Transformer } from '../model/transformer.ts';
import type { ModelWeights } from '../model/weights.ts';
import { useGpu } from '../testing/gpu.ts';
import { seededRandom } from '../testing/random.ts';
import { randomWeights, tinyConfig, tinyData } from '../testing/tiny-model.ts';
import { initStatistics } from './statistics.ts';
import { batchLoss } from './step.ts';
import { TrainableAdapter } from './trainable.ts';
import { DEFAULT_SETTINGS, train } from './trainer.ts';

const gpu = useGpu();
const config = tinyConfig({ hiddenSize: 16, intermediateSize: 20, headDim: 8, vocabSize: 23 });
const weights = randomWeights(config, 14);
const tokens = [1, 4, 9, 16, 2, 7];
const spec = (init: InitMethod): LoraSpec => ({
  rank: 3,
  alpha: 6,
  rslora: false,
  targets: TARGET_PRESETS['all-linear'],
  dropout: 0,
  init,
});
const data = tinyData(config.vocabSize);

/** The adapter as the trainer would start it: with the statistics its init reads. */
async function start(model: ReturnType<typeof createGpuModel>, init: InitMethod) {
  const { statistic, batches } = initEntry(init);
  if (statistic === 'none') return TrainableAdapter.create(gpu(), model.base, spec(init), 2);
  const modules = adaptedModules(config, spec(init));
  const tokenBatches = data.train.slice(0, batches).map((s) => ({
    ids: s.input,
    targets: s.target,
    seqLen: s.input.length,
  }));
  const stats = await initStatistics(gpu(), model.base, tokenBatches, modules, statistic, 1);
  try {
    return await TrainableAdapter.create(
      gpu(),
      model.base,
      spec(init),
      2,
      undefined,
      stats.statistics,
    );
  } finally {
    stats.release();
  }
}

async function logits(view: Transformer): Promise<Float32Array> {
  const runner = createRunner(gpu(), view);
  try {
    return await runner.forwardAll(tokens, 0);
  } finally {
    runner.dispose();
  }
}

/** B·C, row-major, in f64. */
function times(b: ArrayLike<number>, c: ArrayLike<number>, out: number, r: number): Float64Array {
  const product = new Float64Array(out * r);
  for (let o = 0; o < out; o++)
    for (let j = 0; j < r; j++)
      for (let k = 0; k < r; k++) product[o * r + j] += b[o * r + k] * c[k * r + j];
  return product;
}

describe('SVFit', () => {
  it('starts from W’s top singular vectors, and trains only its diagonal core', async () => {
    const model = createGpuModel(gpu(), config, weights);
    const adapter = await start(model, 'svfit');
    try {
      const path = 'model.layers.1.mlp.down_proj';
      const f = (await adapter.read()).get(path);
      const w = weights.get(`${path}.weight`);
      if (!f || !w) throw new Error(path);
      // B·Bᵀ projects onto W's top-3 left singular vectors; A·Aᵀ = I.
      const { u } = jacobiSvd(mat(w.shape[0], w.shape[1], w.data));
      const top = mat(
        u.rows,
        3,
        Array.from({ length: u.rows * 3 }, (_, i) => u.data[Math.floor(i / 3) * u.cols + (i % 3)]),
      );
      const b = mat(w.shape[0], 3, f.b);
      const projection = (x: typeof b) => multiply(x, transpose(x)).data;
      expect(relativeNormError(projection(b), projection(top))).toBeLessThan(1e-4);
      expect(Array.from(f.core ?? [])).toEqual(new Array(9).fill(0));
      const names = adapter.parameters().map((p) => p.name);
      expect(names.every((n) => n.endsWith('.lora_core'))).toBe(true);
      expect(names).toHaveLength(adapter.modules.length);
    } finally {
      adapter.dispose();
      model.dispose();
    }
  });
});

/** The weights the adapter trains against: the base's, with a base-mutating init's residuals. */
async function trainedAgainst(adapter: TrainableAdapter, view: Transformer): Promise<ModelWeights> {
  const against: ModelWeights = new Map(weights);
  for (const m of adapter.modules) {
    const name = `${m.path}.weight`;
    const w = weights.get(name);
    if (!w) throw new Error(name);
    against.set(name, { shape: w.shape, data: await readF32(gpu(), view.weight(name)) });
  }
  return against;
}

const diagonal = (i: number) => i % 4 === 0;

// The init, which core entries train, and whether its B and A start orthonormal (singular vectors).
describe.each([
  ['svfit', diagonal, true],
  ['lora_sb', () => true, true],
  ['sorsa', diagonal, true],
  ['loldu', diagonal, false],
] as const)('%s', (init, trains, orthonormal) => {
  it('leaves the output unchanged at step 0', async () => {
    const model = createGpuModel(gpu(), config, weights);
    const adapter = await start(model, init);
    try {
      const view = adapter.view(model.transformer);
      expect(relativeNormError(await logits(view), await logits(model.transformer))).toBeLessThan(
        1e-6,
      );
      if (!orthonormal) return;
      for (const [path, f] of await adapter.read()) {
        const m = adapter.modules.find((x) => x.path === path);
        if (!m) throw new Error(path);
        const gram = (x: ReturnType<typeof mat>) => multiply(transpose(x), x).data;
        const eye = [1, 0, 0, 0, 1, 0, 0, 0, 1];
        expect(relativeNormError(gram(mat(m.out, 3, f.b)), eye), path).toBeLessThan(1e-4);
        expect(relativeNormError(gram(transpose(mat(3, m.in, f.a))), eye), path).toBeLessThan(1e-4);
      }
    } finally {
      adapter.dispose();
      model.dispose();
    }
  });

  it('gives the core its true gradient where it trains, none elsewhere, and so the factors', async () => {
    const model = createGpuModel(gpu(), config, weights);
    const adapter = await start(model, init);
    try {
      // A nonzero core, so that the gradient at it is not the gradient at the start.
      const random = seededRandom(8);
      const begin = await adapter.read();
      for (const f of begin.values()) {
        f.core = f.core?.map((_, i) => (trains(i) ? random() - 0.5 : 0));
        if (f.gain) f.gain = Float32Array.of(1.3);
      }
      adapter.write(begin);
      await adapter.refresh();
      const against = await trainedAgainst(adapter, adapter.view(model.transformer));
      const batch = {
        ids: Uint32Array.from([1, 4, 7, 2, 9, 3, 8, 6]),
        targets: Int32Array.from([4, 7, 2, 9, -1, 8, 6, 5]),
        seqLen: 4,
      };
      const view = adapter.view(model.transformer);
      await batchLoss(gpu(), view, batch, {
        grads: adapter.backwardGrads,
        accumulate: false,
        gradScale: 1,
      });
      await adapter.finishGradients();
      // Every trained value in f64, by module: the core, its gain, and A and B where they train.
      const values = new Map(
        [...begin].map(([path, f]) => [
          path,
          {
            core: Float64Array.from(f.core ?? []),
            gain: Float64Array.from(f.gain ?? [1]),
            a: Float64Array.from(f.a),
            b: Float64Array.from(f.b),
          },
        ]),
      );
      const loss = () =>
        cpuBatchLoss({
          config,
          weights: against,
          terms: new Map(
            adapter.modules.map((m): [string, CpuTerm] => {
              const v = values.get(m.path);
              if (!v) throw new Error(m.path);
              const b = times(
                v.b,
                v.core.map((c) => c * v.gain[0]),
                m.out,
                m.rank,
              );
              return [m.path, { a: v.a, b, rank: m.rank, scale: m.scale }];
            }),
          ),
          ...batch,
        });
      const numeric = (x: Float64Array, i: number) => {
        const saved = x[i];
        x[i] = saved + 1e-5;
        const plus = loss();
        x[i] = saved - 1e-5;
        const minus = loss();
        x[i] = saved;
        return (plus - minus) / 2e-5;
      };
      for (const m of adapter.modules) {
        const grads = adapter.grads.get(m.path);
        const v = values.get(m.path);
        if (!grads?.core || !v) throw new Error(m.path);
        const analytic = await readF32(gpu(), grads.core);
        for (let i = 0; i < 9; i++) {
          if (!trains(i)) {
            expect(Math.abs(analytic[i]), `${m.path} off-diagonal ${i}`).toBe(0);
            continue;
          }
          const expected = numeric(v.core, i);
          expect(Math.abs(analytic[i] - expected), `${m.path} [${i}]`).toBeLessThan(
            1e-2 * Math.max(1, Math.abs(expected)),
          );
        }
        expect(grads.gain !== undefined, `${m.path} gain`).toBe(
          initEntry(init).trains.includes('gain'),
        );
        if (grads.gain) {
          const expected = numeric(v.gain, 0);
          const [analyticGain] = await readF32(gpu(), grads.gain);
          expect(Math.abs(analyticGain - expected), `${m.path} gain`).toBeLessThan(
            1e-2 * Math.max(1, Math.abs(expected)),
          );
        }
        // Where the factors train too (SORSA), a few entries of each.
        for (const factor of ['a', 'b'] as const) {
          const grad = grads[factor];
          expect(grad !== undefined, `${m.path} ${factor}`).toBe(
            initEntry(init).trains.includes(factor),
          );
          if (!grad) continue;
          const analyticFactor = await readF32(gpu(), grad);
          for (const i of [0, 5, analyticFactor.length - 1]) {
            const expected = numeric(v[factor], i);
            expect(
              Math.abs(analyticFactor[i] - expected),
              `${m.path} ${factor}[${i}]`,
            ).toBeLessThan(1e-2 * Math.max(1, Math.abs(expected)));
          }
        }
      }
    } finally {
      adapter.dispose();
      model.dispose();
    }
  });

  it('exports a plain rank-r LoRA that gives the trained model on the original base', async () => {
    const model = createGpuModel(gpu(), config, weights);
    const settings = { steps: 4, warmupSteps: 0, lr: 5e-2, evalEvery: 0, checkpointEvery: 0 };
    const result = await train({
      gpu: gpu(),
      model,
      baseModel: 'tiny/base',
      data,
      config: { lora: spec(init), train: { ...DEFAULT_SETTINGS, ...settings } },
    });
    const tensors = [];
    try {
      expect(result.trainLossLast).toBeLessThan(result.trainLossFirst);
      const expected = await logits(result.adapter.view(model.transformer));
      const { files } = await result.adapter.peftFiles('tiny/base', config);
      const read = readPeftAdapter(files, init);
      // A base-mutating init's export is the rank-2r LoRA for the original base.
      const doubled = initEntry(init).mutatesBase ? 2 : 1;
      expect(read.details).toMatchObject({
        rank: 3 * doubled,
        alpha: 6 * doubled,
        variant: 'lora',
      });
      const applied = await adapterTerms(gpu(), model.transformer, [{ adapter: read, weight: 1 }]);
      tensors.push(...applied.tensors);
      model.setAdapters(applied.terms);
      expect(relativeNormError(await model.forwardAll(tokens, 0), expected)).toBeLessThan(1e-5);
      // The core trained: it is no longer zero.
      const trained = await result.adapter.read();
      for (const [path, f] of trained)
        expect(
          f.core?.some((v) => v !== 0),
          path,
        ).toBe(true);
    } finally {
      model.setAdapters(new Map());
      releaseTensor(gpu(), ...tensors);
      result.adapter.dispose();
      model.dispose();
    }
  });
});

describe('SORSA', () => {
  it('reports the orthonormality error each step, and its regulariser keeps it lower', async () => {
    const errors: number[] = [];
    for (const orthonormalWeight of [0, 2]) {
      const model = createGpuModel(gpu(), config, weights);
      const settings = { steps: 6, warmupSteps: 0, lr: 5e-2, evalEvery: 0, checkpointEvery: 0 };
      const result = await train({
        gpu: gpu(),
        model,
        baseModel: 'tiny/base',
        data,
        config: {
          lora: spec('sorsa'),
          train: { ...DEFAULT_SETTINGS, ...settings, orthonormalWeight },
        },
      });
      try {
        const trained = result.history.filter((h) => h.step > 0);
        expect(trained).toHaveLength(6);
        // The first step's error is the init's: orthonormal to f32 rounding.
        expect(trained[0].orthonormality).toBeLessThan(1e-5);
        const last = trained[5].orthonormality;
        if (last === undefined) throw new Error('no orthonormality reported');
        errors.push(last);
      } finally {
        result.adapter.dispose();
        model.dispose();
      }
    }
    expect(errors[0]).toBeGreaterThan(1e-3);
    expect(errors[1]).toBeLessThan(errors[0] / 2);
  });
});
