// S²FT trained on the GPU (src/adapters/s2ft.ts): B's gradient is the loss's gradient with respect
// to the base weights' chosen columns (finite differences of the f64 reference), the trained ΔW
// touches no other column, and the export — a plain LoRA with per-module ranks — gives the
// trained model on the base.
import { describe, expect, it } from 'vitest';
import { adaptedModules, TARGET_PRESETS, type LoraSpec } from '../adapters/config.ts';
import { adapterTerms, readPeftAdapter } from '../adapters/peft-read.ts';
import { readF32 } from '../gpu/readback.ts';
import { releaseTensor } from '../gpu/tensor.ts';
import { relativeNormError } from '../linalg/compare.ts';
import { cpuBatchLoss } from '../model/cpu/reference.ts';
import { createGpuModel, createRunner } from '../model/forward.ts';
import type { Transformer } from '../model/transformer.ts';
import type { ModelWeights } from '../model/weights.ts';
import { useGpu } from '../testing/gpu.ts';
import { randomWeights, tinyConfig, tinyData } from '../testing/tiny-model.ts';
import { batchLoss } from './step.ts';
import { TrainableAdapter } from './trainable.ts';
import { DEFAULT_SETTINGS, train } from './trainer.ts';

const gpu = useGpu();
const config = tinyConfig({ hiddenSize: 16, intermediateSize: 20, headDim: 4, vocabSize: 23 });
const weights = randomWeights(config, 21);
const spec: LoraSpec = {
  rank: 8,
  alpha: 16,
  rslora: false,
  targets: TARGET_PRESETS['all-linear'],
  dropout: 0,
  init: 's2ft',
  density: 0.3,
};

/** The input columns A selects, per module: where its one-hot rows put their 1. */
function selected(a: Float32Array, rank: number, inputs: number): number[] {
  return Array.from({ length: rank }, (_, k) =>
    a.subarray(k * inputs, (k + 1) * inputs).indexOf(1),
  );
}

async function logits(view: Transformer): Promise<Float32Array> {
  const runner = createRunner(gpu(), view);
  try {
    return await runner.forwardAll([1, 4, 9, 16, 2, 7], 0);
  } finally {
    runner.dispose();
  }
}

describe('S²FT training', () => {
  it('gives B the gradient of the chosen columns of the base weights', async () => {
    const model = createGpuModel(gpu(), config, weights);
    const adapter = await TrainableAdapter.create(gpu(), model.base, spec, 5);
    try {
      expect(adapter.modules.map((m) => [m.module, m.rank])).toEqual([
        ['o_proj', 4],
        ['down_proj', 6],
        ['o_proj', 4],
        ['down_proj', 6],
      ]);
      const batch = {
        ids: Uint32Array.from([1, 4, 7, 2, 9, 3, 8, 6]),
        targets: Int32Array.from([4, 7, 2, 9, -1, 8, 6, 5]),
        seqLen: 4,
      };
      await batchLoss(gpu(), adapter.view(model.transformer), batch, {
        grads: adapter.backwardGrads,
        accumulate: false,
        gradScale: 1,
      });
      const read = await adapter.read();
      for (const m of adapter.modules) {
        const f = read.get(m.path);
        const grad = adapter.grads.get(m.path)?.b;
        const w = weights.get(`${m.path}.weight`);
        if (!f || !grad || !w) throw new Error(m.path);
        expect(adapter.grads.get(m.path)?.a, 'A is frozen').toBeUndefined();
        const columns = selected(f.a, m.rank, m.in);
        expect(new Set(columns).size).toBe(m.rank);
        const analytic = await readF32(gpu(), grad);
        // ∂L/∂W[o, c] by central differences of the reference loss, at a few (o, k) of B.
        for (const [o, k] of [
          [0, 0],
          [3, m.rank - 1],
          [m.out - 1, 1],
        ]) {
          const data = Float32Array.from(w.data);
          const at = o * m.in + columns[k];
          const lossWith = (value: number) => {
            data[at] = value;
            const changed: ModelWeights = new Map(weights);
            changed.set(`${m.path}.weight`, { shape: w.shape, data: Float32Array.from(data) });
            return cpuBatchLoss({ config, weights: changed, terms: new Map(), ...batch });
          };
          const h = 1e-3;
          const numeric = (lossWith(w.data[at] + h) - lossWith(w.data[at] - h)) / (2 * h);
          expect(
            Math.abs(analytic[o * m.rank + k] - numeric),
            `${m.path} [${o}, ${k}]`,
          ).toBeLessThan(2e-3 * Math.max(1, Math.abs(numeric)));
        }
      }
    } finally {
      adapter.dispose();
      model.dispose();
    }
  });

  it('changes only the chosen columns, and exports the exact LoRA of the trained model', async () => {
    const model = createGpuModel(gpu(), config, weights);
    const settings = { steps: 4, warmupSteps: 0, lr: 2e-2, evalEvery: 0, checkpointEvery: 0 };
    const result = await train({
      gpu: gpu(),
      model,
      baseModel: 'tiny/base',
      data: tinyData(config.vocabSize),
      config: { lora: spec, train: { ...DEFAULT_SETTINGS, ...settings } },
    });
    const tensors = [];
    try {
      expect(result.trainLossLast).toBeLessThan(result.trainLossFirst);
      for (const [path, f] of await result.adapter.read()) {
        const m = adaptedModules(config, spec).find((x) => x.path === path);
        if (!m) throw new Error(path);
        const columns = new Set(selected(f.a, m.rank, m.in));
        // ΔW = B·A: nonzero only in the chosen columns, and there B itself.
        for (let c = 0; c < m.in; c++) {
          const k = [...columns].sort((x, y) => x - y).indexOf(c);
          const column = Array.from({ length: m.out }, (_, o) => (k < 0 ? 0 : f.b[o * m.rank + k]));
          if (k < 0) expect(column.every((v) => v === 0)).toBe(true);
          else
            expect(
              column.some((v) => v !== 0),
              `${path} column ${c}`,
            ).toBe(true);
        }
      }
      const expected = await logits(result.adapter.view(model.transformer));
      const { files } = await result.adapter.peftFiles('tiny/base', config);
      const adapterConfig = JSON.parse(
        new TextDecoder().decode(files.get('adapter_config.json')),
      ) as { rank_pattern: Record<string, number> };
      // Per-module ranks, by path (the spec's rank 8 is the default r no module has).
      expect(adapterConfig.rank_pattern).toEqual({
        'model.layers.0.self_attn.o_proj': 4,
        'model.layers.0.mlp.down_proj': 6,
        'model.layers.1.self_attn.o_proj': 4,
        'model.layers.1.mlp.down_proj': 6,
      });
      const read = readPeftAdapter(files, 's2ft');
      const applied = await adapterTerms(gpu(), model.transformer, [{ adapter: read, weight: 1 }]);
      tensors.push(...applied.tensors);
      model.setAdapters(applied.terms);
      expect(
        relativeNormError(await model.forwardAll([1, 4, 9, 16, 2, 7], 0), expected),
      ).toBeLessThan(1e-5);
    } finally {
      model.setAdapters(new Map());
      releaseTensor(gpu(), ...tensors);
      result.adapter.dispose();
      model.dispose();
    }
  });
});
