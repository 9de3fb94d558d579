// Weight matrices kept on the GPU in the half precision their file used: half the memory, and
// nothing else may change. Every path that reads a base weight (embedding, head, forward, backward, the
// base-mutating and data-aware inits, DoRA, loading PEFT DoRA adapters) must give
// exactly what the f32 copy of the same values gives.
import { describe, expect, it } from 'vitest';
import { TARGET_PRESETS, type InitMethod, type LoraSpec } from '../adapters/config.ts';
import { adapterTerms, readPeftAdapter } from '../adapters/peft-read.ts';
import { decodeHalf, encodeHalf, type HalfDType } from '../gpu/half.ts';
import { releaseTensor } from '../gpu/tensor.ts';
import { relativeNormError } from '../linalg/compare.ts';
import { FIXTURES } from '../testing/fixtures.ts';
import { useGpu } from '../testing/gpu.ts';
import { randomArray, seededRandom } from '../testing/random.ts';
import { randomWeights, tinyConfig, tinyData } from '../testing/tiny-model.ts';
import { DEFAULT_SETTINGS, train } from '../train/trainer.ts';
import { folderFiles } from './files-node.ts';
import { createGpuModel, type GpuModel } from './forward.ts';
import { loadHfFolder } from './hf-folder.ts';
import { modulePath, moduleSpec } from './architecture.ts';
import { writeSafetensors } from './safetensors.ts';
import { gpuDType, type ModelWeights, type WeightPrecision } from './weights.ts';

const gpu = useGpu();
const config = tinyConfig({ vocabSize: 23, attentionBias: true });

/** Weights as a file in `dtype` would hold them: matrices rounded, and marked so. */
function asIfStored(weights: ModelWeights, dtype: HalfDType): ModelWeights {
  return new Map(
    [...weights].map(([name, t]) =>
      gpuDType(t, dtype) === dtype
        ? [name, { ...t, data: decodeHalf(encodeHalf(t.data, dtype), dtype), half: dtype }]
        : [name, t],
    ),
  );
}

const weights = asIfStored(randomWeights(config, 8), 'bf16');
const tokens = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3];

async function withModels<T>(
  run: (model: GpuModel, precision: WeightPrecision) => Promise<T>,
  from: ModelWeights = weights,
): Promise<[T, T]> {
  const results: T[] = [];
  for (const precision of ['file', 'f32'] as const) {
    const model = createGpuModel(gpu(), config, from, precision);
    try {
      results.push(await run(model, precision));
    } finally {
      model.dispose();
    }
  }
  return results as [T, T];
}

describe('a bf16 model kept in bf16', () => {
  it('with a tied head too: the same logits from a bf16 embedding table', async () => {
    const tied = tinyConfig({ vocabSize: 23, attentionBias: true, tieWordEmbeddings: true });
    const tiedWeights = new Map([...weights].filter(([name]) => name !== 'lm_head.weight'));
    const logits: Float32Array[] = [];
    for (const precision of ['file', 'f32'] as const) {
      const model = createGpuModel(gpu(), tied, tiedWeights, precision);
      logits.push(await model.forwardAll(tokens, 0));
      model.dispose();
    }
    expect(logits[0]).toEqual(logits[1]);
  });

  it('takes less GPU memory and computes the same logits', async () => {
    const [[half, halfBytes], [full, fullBytes]] = await withModels(async (model) => [
      await model.forwardAll(tokens, 0),
      model.weightBytes,
    ]);
    const halves = [...weights.values()].filter((t) => t.half);
    const halfCount = halves.reduce((n, t) => n + t.data.length, 0);
    expect(halfCount).toBeGreaterThan(0);
    expect(fullBytes - halfBytes).toBe(2 * halfCount);
    expect(half).toEqual(full);
  });

  const spec = (init: InitMethod, dora = false): LoraSpec => ({
    rank: 2,
    alpha: 4,
    rslora: false,
    targets: TARGET_PRESETS['all-linear'],
    dropout: 0,
    init,
    variant: dora ? 'dora' : 'lora',
  });

  it.each([
    ['pissa', false],
    ['olora', false],
    ['corda_ipm', false],
    ['lora_ga', false],
    ['eva', false],
    ['lora', true],
    ['pissa', true],
  ] as const)('trains %s (DoRA %s) along the same loss curve', async (init, dora) => {
    const [half, full] = await withModels(async (model) => {
      const result = await train({
        gpu: gpu(),
        model,
        baseModel: 'tiny',
        data: tinyData(config.vocabSize),
        config: {
          lora: spec(init, dora),
          train: {
            ...DEFAULT_SETTINGS,
            steps: 3,
            warmupSteps: 0,
            lr: 1e-2,
            batchSize: 2,
            evalEvery: 0,
          },
        },
      });
      result.adapter.dispose();
      expect(result.status).toBe('done');
      return result.history.map((h) => h.loss);
    });
    expect(half).toEqual(full);
  });

  it('applies a PEFT DoRA adapter (with modules_to_save) to its half weights', async () => {
    const random = seededRandom(5);
    const q = modulePath(config.arch, 0, 'q_proj');
    const { in: qIn, out: qOut } = moduleSpec(config.arch, 'q_proj');
    const tensor = (name: string, shape: number[]) => ({
      name: `base_model.model.${name}`,
      shape,
      data: randomArray(
        random,
        shape.reduce((a, b) => a * b, 1),
      ),
    });
    const files = new Map([
      [
        'adapter_config.json',
        new TextEncoder().encode(
          JSON.stringify({
            peft_type: 'LORA',
            r: 2,
            lora_alpha: 4,
            use_dora: true,
            modules_to_save: ['embed_tokens'],
          }),
        ),
      ],
      [
        'adapter_model.safetensors',
        writeSafetensors([
          tensor(`${q}.lora_A.weight`, [2, qIn]),
          tensor(`${q}.lora_B.weight`, [qOut, 2]),
          tensor(`${q}.lora_magnitude_vector`, [qOut]),
          tensor('model.embed_tokens.modules_to_save.default.weight', [
            config.vocabSize,
            config.hiddenSize,
          ]),
        ]),
      ],
    ]);
    const adapter = readPeftAdapter(files, 'dora');
    const [half, full] = await withModels(async (model) => {
      const applied = await adapterTerms(gpu(), model.transformer, [{ adapter, weight: 0.7 }]);
      try {
        model.setAdapters(applied.terms, applied.overrides);
        return await model.forwardAll(tokens, 0);
      } finally {
        releaseTensor(gpu(), ...applied.tensors);
      }
    });
    expect(half).toEqual(full);
  });
});

it('keeps the BF16 tensors of a real model file in bf16, with the same logits', async () => {
  const sharded = `${FIXTURES}models/hf/quatricmorph_tiny-llama-2shard`;
  const { config: tiny, weights: fromFile } = await loadHfFolder(await folderFiles(sharded));
  const logits: Float32Array[] = [];
  const bytes: number[] = [];
  for (const precision of ['file', 'f32'] as const) {
    const model = createGpuModel(gpu(), tiny, fromFile, precision);
    logits.push(await model.forwardAll(tokens, 0));
    bytes.push(model.weightBytes);
    model.dispose();
  }
  expect(logits[0]).toEqual(logits[1]);
  expect(bytes[1] - bytes[0]).toBe(2 * 2 * 64 * 48); // two 64×48 tensors at 2 bytes less each
});

describe('weight precision', () => {
  const f32Weights = randomWeights(config, 9);

  it.each(['f16', 'bf16'] as const)(
    '%s rounds an f32 model: the same as the f32 model of the rounded values',
    async (dtype) => {
      const rounded = createGpuModel(gpu(), config, f32Weights, dtype);
      const reference = createGpuModel(gpu(), config, asIfStored(f32Weights, dtype), 'f32');
      const exact = createGpuModel(gpu(), config, f32Weights, 'file');
      try {
        const logits = await rounded.forwardAll(tokens, 0);
        expect(logits).toEqual(await reference.forwardAll(tokens, 0));
        // …and close to the unrounded model: f16 keeps 11 significant bits, bf16 8.
        const error = relativeNormError(logits, await exact.forwardAll(tokens, 0));
        expect(error).toBeLessThan(dtype === 'f16' ? 3e-3 : 2e-2);
        expect(error).toBeGreaterThan(0);
        expect(rounded.weightBytes).toBeLessThan(exact.weightBytes);
      } finally {
        rounded.dispose();
        reference.dispose();
        exact.dispose();
      }
    },
  );

  it("'file' keeps f32 files in f32", () => {
    const model = createGpuModel(gpu(), config, f32Weights);
    const total = [...f32Weights.values()].reduce((n, t) => n + t.data.length, 0);
    expect(model.weightBytes).toBe(4 * total);
    model.dispose();
  });
});
