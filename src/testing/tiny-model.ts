// Tiny random models for tests, of every family: every feature (GQA, biases, untied head,
// windows, fused modules…) on shapes small enough for f64 finite differences, and sizes that are
// not multiples of any tile.
import type { PreparedData } from '../train/data.ts';
import type { ModelConfig } from '../model/config.ts';
import { FAMILIES } from '../model/families.ts';
import { llamaConfigJson, type LlamaShape } from '../model/families/llama.ts';
import { expectedWeights, parseHfConfig } from '../model/hf-config.ts';
import type { ModelWeights } from '../model/weights.ts';
import { randomArray, seededRandom } from './random.ts';

/** A tiny Llama (Qwen2 with `attentionBias`), any size overridden. */
export function tinyConfig(overrides: Partial<LlamaShape> = {}): ModelConfig {
  return parseHfConfig(
    llamaConfigJson({
      hiddenSize: 12,
      intermediateSize: 18,
      numLayers: 2,
      numHeads: 4,
      numKvHeads: 2,
      headDim: 6,
      vocabSize: 19,
      maxPositions: 16,
      tieWordEmbeddings: false,
      ...overrides,
    }),
  );
}

/** The names of the families in the families table. */
export const FAMILY_NAMES = FAMILIES.map((f) => f.name);

/** A family's example model (every feature it supports, tiny odd sizes), with changes. */
export { exampleConfig as familyConfig } from '../model/families.ts';

/**
 * Weights with entries uniform in ±0.5 (norm weights around 1, biases ±0.5), from a seed;
 * `realistic` scales matrices to ±1/√in instead, as trained models are (benchmarks of full-size
 * shapes).
 */
export function randomWeights(config: ModelConfig, seed: number, realistic = false): ModelWeights {
  const random = seededRandom(seed);
  const weights: ModelWeights = new Map();
  for (const [name, { shape: stored, transposed }] of expectedWeights(config)) {
    // The engine keeps Conv1D weights [out, in].
    const shape = transposed ? [stored[1], stored[0]] : stored;
    const isNorm = shape.length === 1 && !name.endsWith('.bias');
    const [lo, hi] = isNorm ? [0.5, 1.5] : [-0.5, 0.5];
    const bound = realistic && shape.length === 2 ? 1 / Math.sqrt(shape[1]) : 1;
    const data = randomArray(random, shape[0] * (shape[1] ?? 1), lo * bound, hi * bound);
    weights.set(name, { shape, data });
  }
  return weights;
}

/** Six sequences of 8 tokens over a vocabulary of `vocab`, all trained, none held out. */
export function tinyData(vocab: number): PreparedData {
  const train = Array.from({ length: 6 }, (_, i) => ({
    input: Uint32Array.from({ length: 8 }, (_, t) => (i * 5 + t * 3) % vocab),
    target: Int32Array.from({ length: 8 }, (_, t) => (i * 5 + t * 3 + 3) % vocab),
  }));
  return {
    train,
    validation: [],
    summary: {
      format: 'text',
      examples: 6,
      tokens: 48,
      trainedTokens: 48,
      trainSequences: 6,
      validationSequences: 0,
      preview: [],
    },
  };
}
