// The inits that train a core between frozen factors (src/train/core.ts): SVFit (B, A = W's top
// singular vectors, the core's diagonal trains: r numbers per module) and LoRA-SB (B, A from the
// gradient's SVD, the whole r × r core trains). For each: the output is unchanged at step 0, the
// core has its true gradient (masked to what trains), and the export — the plain LoRA B·C, A of
// rank r — applied to the original base is the trained model.
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

describe.each([
  ['svfit', (i: number) => i % 4 === 0],
  ['lora_sb', () => true],
] as const)('%s', (init, trains) => {
  it('leaves the output unchanged at step 0, with orthonormal frozen factors', async () => {
    const model = createGpuModel(gpu(), config, weights);
    const adapter = await start(model, init);
    try {
      const view = adapter.view(model.transformer);
      expect(relativeNormError(await logits(view), await logits(model.transformer))).toBeLessThan(
        1e-6,
      );
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

  it('gives the core its true gradient where it trains, none elsewhere', async () => {
    const model = createGpuModel(gpu(), config, weights);
    const adapter = await start(model, init);
    try {
      // A nonzero core, so that the gradient at it is not the gradient at the start.
      const random = seededRandom(8);
      const begin = await adapter.read();
      for (const f of begin.values())
        f.core = f.core?.map((_, i) => (trains(i) ? random() - 0.5 : 0));
      adapter.write(begin);
      await adapter.refresh();
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
      const cores = new Map([...begin].map(([path, f]) => [path, Float64Array.from(f.core ?? [])]));
      const loss = () =>
        cpuBatchLoss({
          config,
          weights,
          terms: new Map(
            adapter.modules.map((m): [string, CpuTerm] => {
              const f = begin.get(m.path);
              if (!f) throw new Error(m.path);
              const b = times(f.b, cores.get(m.path) ?? [], m.out, m.rank);
              return [m.path, { a: Float64Array.from(f.a), b, rank: m.rank, scale: m.scale }];
            }),
          ),
          ...batch,
        });
      for (const m of adapter.modules) {
        const grad = adapter.grads.get(m.path)?.core;
        const core = cores.get(m.path);
        if (!grad || !core) throw new Error(m.path);
        const analytic = await readF32(gpu(), grad);
        for (let i = 0; i < 9; i++) {
          if (!trains(i)) {
            expect(Math.abs(analytic[i]), `${m.path} off-diagonal ${i}`).toBe(0);
            continue;
          }
          const saved = core[i];
          core[i] = saved + 1e-5;
          const plus = loss();
          core[i] = saved - 1e-5;
          const minus = loss();
          core[i] = saved;
          const numeric = (plus - minus) / 2e-5;
          expect(Math.abs(analytic[i] - numeric), `${m.path} [${i}]`).toBeLessThan(
            1e-2 * Math.max(1, Math.abs(numeric)),
          );
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
      expect(read.details).toMatchObject({ rank: 3, alpha: 6, variant: 'lora' });
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
