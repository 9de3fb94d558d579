// Tiny random Llama-family models for tests: every feature (GQA, biases, untied head) on shapes
// small enough for f64 finite differences, and sizes that are not multiples of any tile.
import type { PreparedData } from '../train/data.ts';
import type { ModelConfig } from '../model/config.ts';
import { LINEAR_MODULES, modulePath, moduleShape } from '../model/modules.ts';
import type { ModelWeights } from '../model/weights.ts';
import { randomArray, seededRandom } from './random.ts';

export function tinyConfig(overrides: Partial<ModelConfig> = {}): ModelConfig {
  return {
    modelType: 'llama',
    hiddenSize: 12,
    intermediateSize: 18,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 6,
    vocabSize: 19,
    maxPositions: 16,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    tieWordEmbeddings: false,
    attentionBias: false,
    bosTokenId: 1,
    eosTokenIds: [2],
    ...overrides,
  };
}

/**
 * Weights with entries uniform in ±0.5 (norm weights around 1), from a seed; `realistic` scales
 * matrices to ±1/√in instead, as trained models are (benchmarks of full-size shapes).
 */
export function randomWeights(config: ModelConfig, seed: number, realistic = false): ModelWeights {
  const random = seededRandom(seed);
  const weights: ModelWeights = new Map();
  const add = (name: string, shape: number[], lo = -0.5, hi = 0.5) => {
    const bound = realistic && shape.length === 2 ? 1 / Math.sqrt(shape[1]) : 1;
    const data = randomArray(random, shape[0] * (shape[1] ?? 1), lo * bound, hi * bound);
    weights.set(name, { shape, data });
  };
  const d = config.hiddenSize;
  add('model.embed_tokens.weight', [config.vocabSize, d]);
  for (let l = 0; l < config.numLayers; l++) {
    add(`model.layers.${l}.input_layernorm.weight`, [d], 0.5, 1.5);
    add(`model.layers.${l}.post_attention_layernorm.weight`, [d], 0.5, 1.5);
    for (const module of LINEAR_MODULES) {
      const shape = moduleShape(config, module);
      add(`${modulePath(l, module)}.weight`, [shape.out, shape.in]);
      if (config.attentionBias && ['q_proj', 'k_proj', 'v_proj'].includes(module))
        add(`${modulePath(l, module)}.bias`, [shape.out]);
    }
  }
  add('model.norm.weight', [d], 0.5, 1.5);
  if (!config.tieWordEmbeddings) add('lm_head.weight', [config.vocabSize, d]);
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
