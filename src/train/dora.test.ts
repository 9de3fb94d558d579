// DoRA training end to end: the output is unchanged at step 0, the magnitudes train, and the
// exported PEFT files (use_dora, `…lora_magnitude_vector`) applied by the reader to the original
// base reproduce the trained model — also for PiSSA, whose residual base the export folds back.
import { describe, expect, it } from 'vitest';
import { TARGET_PRESETS, type InitMethod, type LoraSpec } from '../adapters/config.ts';
import { adapterTerms, readPeftAdapter } from '../adapters/peft-read.ts';
import { cpuDoraNorms } from '../adapters/variants/dora.ts';
import { releaseTensor, type Tensor } from '../gpu/tensor.ts';
import { relativeNormError } from '../linalg/compare.ts';
import { createGpuModel, createRunner, type GpuModel } from '../model/forward.ts';
import { readSafetensors } from '../model/safetensors.ts';
import type { Transformer } from '../model/transformer.ts';
import { useGpu } from '../testing/gpu.ts';
import { randomWeights, tinyConfig, tinyData } from '../testing/tiny-model.ts';
import { TrainableAdapter } from './trainable.ts';
import { DEFAULT_SETTINGS, train } from './trainer.ts';

const gpu = useGpu();
const config = tinyConfig({ hiddenSize: 16, intermediateSize: 20, headDim: 8, vocabSize: 23 });
const weights = randomWeights(config, 8);
const tokens = [1, 4, 9, 16, 2, 7];

const data = tinyData(config.vocabSize);

const spec = (init: InitMethod): LoraSpec => ({
  rank: 3,
  alpha: 6,
  rslora: false,
  targets: TARGET_PRESETS['all-linear'],
  layers: [1],
  dropout: 0,
  init,
  variant: 'dora',
});

/** ‖W‖ per row of a module's original weight, in f64. */
function baseRowNorms(path: string): Float64Array {
  const w = weights.get(`${path}.weight`);
  if (!w) throw new Error(path);
  const [out, inputs] = w.shape;
  const noAdapter = { a: new Float64Array(inputs), b: new Float64Array(out), rank: 1, scale: 1 };
  return cpuDoraNorms(w.data, noAdapter, inputs);
}

/** Three quick steps: enough to move every factor and magnitude away from its init. */
function trainTiny(model: GpuModel, init: InitMethod) {
  const settings = { steps: 3, warmupSteps: 0, lr: 5e-2, evalEvery: 0, checkpointEvery: 0 };
  return train({
    gpu: gpu(),
    model,
    baseModel: 'tiny/base',
    data,
    config: { lora: spec(init), train: { ...DEFAULT_SETTINGS, ...settings } },
  });
}

async function logits(view: Transformer): Promise<Float32Array> {
  const runner = createRunner(gpu(), view);
  try {
    return await runner.forwardAll(tokens, 0);
  } finally {
    runner.dispose();
  }
}

describe('DoRA training', () => {
  it.each(['lora', 'pissa'] satisfies InitMethod[])(
    '%s: magnitudes start at the row norms of W, leaving the output unchanged',
    async (init) => {
      const model = createGpuModel(gpu(), config, weights);
      const adapter = await TrainableAdapter.create(gpu(), model.transformer, spec(init), 1);
      try {
        const path = 'model.layers.1.mlp.down_proj';
        const magnitude = (await adapter.read()).get(path)?.magnitude ?? [];
        expect(relativeNormError(magnitude, baseRowNorms(path))).toBeLessThan(1e-5);
        const expected = await logits(model.transformer);
        const actual = await logits(adapter.view(model.transformer));
        expect(relativeNormError(actual, expected)).toBeLessThan(1e-6);
      } finally {
        adapter.dispose();
        model.dispose();
      }
    },
  );

  it.each(['lora', 'pissa'] satisfies InitMethod[])(
    '%s: the exported PEFT files applied to the original base give the trained model',
    async (init) => {
      const model = createGpuModel(gpu(), config, weights);
      const result = await trainTiny(model, init);
      const tensors: Tensor[] = [];
      try {
        const expected = await logits(result.adapter.view(model.transformer));
        const trained = await result.adapter.read();
        const { files } = await result.adapter.peftFiles('tiny/base', config);
        const adapterConfig = JSON.parse(
          new TextDecoder().decode(files.get('adapter_config.json')),
        ) as Record<string, unknown>;
        expect(adapterConfig).toMatchObject({ use_dora: true, r: init === 'lora' ? 3 : 6 });
        const st = readSafetensors(
          files.get('adapter_model.safetensors') ?? new Uint8Array(),
          'adapter_model.safetensors',
        );
        const key = 'base_model.model.model.layers.1.mlp.down_proj.lora_magnitude_vector';
        expect(st.header.tensors.get(key)?.shape).toEqual([config.hiddenSize]);
        expect(st.header.tensors.size).toBe(3 * 7);

        const read = readPeftAdapter(files, 'exported');
        expect(read.details.variant).toBe('dora');
        for (const [path, m] of read.modules) {
          expect(m.magnitude, path).toEqual(trained.get(path)?.magnitude);
          // The magnitudes trained: they left ‖W‖_row.
          const moved = relativeNormError(m.magnitude ?? [], baseRowNorms(path));
          expect(moved, path).toBeGreaterThan(1e-3);
        }
        const applied = await adapterTerms(gpu(), model.transformer, [
          { adapter: read, weight: 1 },
        ]);
        tensors.push(...applied.tensors);
        model.setAdapters(applied.terms);
        expect(relativeNormError(await model.forwardAll(tokens, 0), expected)).toBeLessThan(1e-5);
      } finally {
        releaseTensor(gpu(), ...tensors);
        result.adapter.dispose();
        model.dispose();
      }
    },
  );

  it('pissa: exported as trained, beside its residual base, gives the trained model', async () => {
    const model = createGpuModel(gpu(), config, weights);
    const result = await trainTiny(model, 'pissa');
    const tensors: Tensor[] = [];
    try {
      const expected = await logits(result.adapter.view(model.transformer));
      const { files, residuals } = await result.adapter.residualExport('./base-residual', config);
      const residualWeights = new Map(weights);
      for (const [name, values] of residuals)
        residualWeights.set(name, { shape: weights.get(name)?.shape ?? [], data: values });
      const residualModel = createGpuModel(gpu(), config, residualWeights);
      try {
        const read = readPeftAdapter(files, 'as trained');
        const applied = await adapterTerms(gpu(), residualModel.transformer, [
          { adapter: read, weight: 1 },
        ]);
        tensors.push(...applied.tensors);
        residualModel.setAdapters(applied.terms);
        const actual = await residualModel.forwardAll(tokens, 0);
        expect(relativeNormError(actual, expected)).toBeLessThan(1e-5);
      } finally {
        residualModel.dispose();
      }
    } finally {
      releaseTensor(gpu(), ...tensors);
      result.adapter.dispose();
      model.dispose();
    }
  });
});
