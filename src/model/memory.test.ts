// The memory estimates against what the engine really allocates: a layer's kept activations
// counted tensor by tensor from a real forward pass of every family, with and without LoRA
// terms and dropout; the weights' bytes against the model the GPU builds.
import { describe, expect, it } from 'vitest';
import { LORA } from '../adapters/variants/lora.ts';
import { Batch } from '../gpu/dispatch.ts';
import { bytesOf, releaseTensor, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import { useGpu } from '../testing/gpu.ts';
import { randomArray, seededRandom } from '../testing/random.ts';
import { FAMILY_NAMES, familyConfig, randomWeights } from '../testing/tiny-model.ts';
import { modulePath } from './architecture.ts';
import type { ModelConfig } from './config.ts';
import { createGpuModel } from './forward.ts';
import {
  adapterParameters,
  kvCacheBytes,
  layerActivationsPerToken,
  trainingActivationBytes,
  weightMemory,
} from './memory.ts';
import { layerForward, type AdapterTerm, type Transformer } from './transformer.ts';

const device = useGpu();
const TOKENS = 5;
const RANK = 3;

/** Bytes of every tensor layer 1's forward pass hands to `keep`, with LoRA on `targeted`. */
async function keptBytes(config: ModelConfig, targeted: Set<string>, dropout: number) {
  const gpu = device();
  const model = createGpuModel(gpu, config, randomWeights(config, 3));
  const random = seededRandom(5);
  const factors: Tensor[] = [];
  const terms = new Map<string, AdapterTerm[]>();
  for (const m of config.arch.modules.filter((m) => targeted.has(m.name))) {
    const a = uploadTensor(gpu, randomArray(random, RANK * m.in), [RANK, m.in], 'f32', 'A');
    const b = uploadTensor(gpu, randomArray(random, m.out * RANK), [m.out, RANK], 'f32', 'B');
    factors.push(a, b);
    const { term } = await LORA.applied(gpu, {
      module: { scale: 1 } as never,
      a,
      b,
      weight: 1,
      baseWeight: a,
    });
    terms.set(modulePath(config.arch, 1, m), [{ ...term, dropout }]);
  }
  const t: Transformer = { ...model.base, adapterTerms: (path) => terms.get(path) ?? [] };
  const x = uploadTensor(
    gpu,
    randomArray(random, TOKENS * config.hiddenSize),
    [TOKENS, config.hiddenSize],
    'f32',
    'x',
  );
  const kept: Tensor[] = [];
  const batch = new Batch(gpu);
  layerForward(batch, t, 1, x, {
    at: { pos0: 0, seqLen: TOKENS },
    keep: (k) => (kept.push(k), k),
    dropoutSeed: 7,
  });
  await batch.submit();
  releaseTensor(gpu, x, ...kept, ...factors);
  model.dispose();
  return kept.reduce((n, k) => n + bytesOf(k), 0);
}

describe('memory estimates', () => {
  it.each(FAMILY_NAMES)('%s: a layer keeps the activations the estimate counts', async (name) => {
    const config = familyConfig(name);
    const none = new Set<string>();
    expect(await keptBytes(config, none, 0)).toBe(
      4 * TOKENS * layerActivationsPerToken(config, none, RANK, false),
    );
    // LoRA on every other module, with dropout (a masked copy of each input).
    const some = new Set(config.arch.modules.filter((_, i) => i % 2 === 0).map((m) => m.name));
    expect(await keptBytes(config, some, 0.1)).toBe(
      4 * TOKENS * layerActivationsPerToken(config, some, RANK, true),
    );
  });

  it('weights, KV cache and the adapter agree with the model the GPU builds', () => {
    const config = familyConfig('qwen3');
    const weights = randomWeights(config, 1);
    for (const precision of ['f32', 'bf16', 'q8_0'] as const) {
      const model = createGpuModel(device(), config, weights, precision);
      try {
        expect(weightMemory(weights, precision).bytes).toBe(model.weightBytes);
        expect(weightMemory(weights, precision).dtypes).toEqual(model.weightDTypes);
      } finally {
        model.dispose();
      }
    }
    const { numLayers, maxPositions, numKvHeads, headDim } = config;
    expect(kvCacheBytes(config)).toBe(4 * 2 * numLayers * maxPositions * numKvHeads * headDim);
    const perLayer = config.arch.modules
      .filter((m) => m.name === 'q_proj' || m.name === 'v_proj')
      .reduce((n, m) => n + 4 * (m.in + m.out), 0);
    expect(adapterParameters(config, { rank: 4, targets: ['q_proj', 'v_proj'] })).toBe(
      numLayers * perLayer,
    );
  });

  it('recompute keeps one layer and the inputs of the others', () => {
    const config = familyConfig('llama');
    const shape = { tokens: 64, rank: 8, targets: ['all-linear'], dropout: 0, recompute: false };
    const all = trainingActivationBytes(config, shape);
    const recomputed = trainingActivationBytes(config, { ...shape, recompute: true });
    expect(recomputed).toBeLessThan(all);
    expect(trainingActivationBytes(config, { ...shape, tokens: 128 })).toBe(2 * all);
  });
});
