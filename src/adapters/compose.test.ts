// Adapters composed into the weights on the host must give the model the GPU's run-time
// composition gives: every kind of term (LoRA at positive and negative weights, DoRA, embedding
// LoRA, whole weights), tied and untied heads, through the CPU reference forward.
import { describe, expect, it } from 'vitest';
import { releaseTensor } from '../gpu/tensor.ts';
import { relativeNormError } from '../linalg/compare.ts';
import { gaussian } from '../linalg/random.ts';
import { cpuRunner } from '../model/cpu/runner.ts';
import { createGpuModel } from '../model/forward.ts';
import { modulePath, moduleSpec } from '../model/architecture.ts';
import { useGpu } from '../testing/gpu.ts';
import { randomWeights, tinyConfig } from '../testing/tiny-model.ts';
import { composeWeights, type Composition } from './compose.ts';
import { adapterTerms, type AdapterModule, type PeftAdapter } from './peft-read.ts';
import type { VariantName } from './variants.ts';

const gpu = useGpu();
const tokens = [1, 5, 9, 3, 17, 2, 11];

function factors(rank: number, out: number, width: number, seed: number): AdapterModule {
  return {
    rank,
    scale: 2 / rank,
    a: gaussian(rank * width, seed).map((v) => v * 0.4),
    b: gaussian(out * rank, seed + 1).map((v) => v * 0.4),
  };
}

function adapter(
  name: string,
  modules: [string, AdapterModule][],
  full: PeftAdapter['fullWeights'] = new Map(),
  variant: VariantName = 'lora',
): PeftAdapter {
  return {
    name,
    baseModel: null,
    modules: new Map(modules),
    fullWeights: full,
    details: {
      rank: 2,
      alpha: 4,
      rslora: false,
      modules: modules.length,
      targets: [],
      variant,
    },
    nonFinite: [],
  };
}

describe.each([false, true])('composed weights (tied head: %s)', (tied) => {
  const config = tinyConfig({ vocabSize: 23, tieWordEmbeddings: tied });
  const weights = randomWeights(config, 7);
  const module = (layer: number, type: string, seed: number) => {
    const { out, in: width } = moduleSpec(config.arch, type);
    return [modulePath(config.arch, layer, type), factors(2, out, width, seed)] as [
      string,
      AdapterModule,
    ];
  };
  const embedding: AdapterModule = {
    ...factors(3, config.hiddenSize, config.vocabSize, 40),
    embedding: true,
  };
  const [doraPath, dora] = module(1, 'v_proj', 30);
  dora.magnitude = Float32Array.from({ length: dora.b.length / dora.rank }, (_, i) => 0.5 + i / 10);
  const head = tied ? 'model.embed_tokens.weight' : 'lm_head.weight';
  const replaced = Float32Array.from(weights.get(head)!.data, (v, i) => v * 0.5 + (i % 3) / 10);
  const composition: Composition = [
    { adapter: adapter('a', [module(0, 'q_proj', 10), module(1, 'down_proj', 12)]), weight: 0.8 },
    {
      adapter: adapter('b', [module(0, 'q_proj', 20), ['model.embed_tokens', embedding]]),
      weight: -0.5,
    },
    { adapter: adapter('dora', [[doraPath, dora]], new Map(), 'dora'), weight: 0.6 },
    {
      adapter: adapter(
        'whole',
        [],
        new Map([[head, { shape: weights.get(head)!.shape, data: replaced }]]),
      ),
      weight: 0.7,
    },
  ];

  it('the CPU reference forward on them gives the GPU run-time composition', async () => {
    const model = createGpuModel(gpu(), config, weights);
    const applied = await adapterTerms(gpu(), model.base, composition);
    let onGpu: Float32Array;
    try {
      model.setAdapters(applied.terms, applied.overrides);
      onGpu = await model.forwardAll(tokens, 0);
    } finally {
      releaseTensor(gpu(), ...applied.tensors);
      model.dispose();
    }
    const composed = composeWeights(config, weights, composition);
    const onCpu = await cpuRunner(composed.config, composed.weights).forwardAll(tokens, 0);
    expect(relativeNormError(onCpu, onGpu)).toBeLessThan(1e-5);
    // Without the composition the logits are far apart: the comparison has teeth.
    const plain = await cpuRunner(config, weights).forwardAll(tokens, 0);
    expect(relativeNormError(plain, onGpu)).toBeGreaterThan(1e-2);
  });

  it('copies only what adapters touch and leaves the base as it was', () => {
    const before = new Map([...weights].map(([n, t]) => [n, t.data.slice()]));
    const { weights: composed } = composeWeights(config, weights, composition.slice(0, 1));
    const changed = [...composed].filter(([n, t]) => t !== weights.get(n)).map(([n]) => n);
    expect(changed.sort()).toEqual(
      [
        `${modulePath(config.arch, 0, 'q_proj')}.weight`,
        `${modulePath(config.arch, 1, 'down_proj')}.weight`,
      ].sort(),
    );
    for (const [n, data] of before) expect(weights.get(n)!.data).toEqual(data);
  });

  it('refuses an adapter for another model, naming the module', () => {
    const wide = adapter('wide', [[modulePath(config.arch, 0, 'q_proj'), factors(2, 5, 99, 1)]]);
    expect(() => composeWeights(config, weights, [{ adapter: wide, weight: 1 }])).toThrow(
      /wide.*does not fit this model[\s\S]*q_proj/,
    );
  });
});
