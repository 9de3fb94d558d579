// What a model costs in GPU memory, before anything is uploaded: its weights in each precision
// the studio can keep them in, the KV cache, and for training the activations kept for the
// backward pass and the adapter's optimiser state. The Model panel shows these per precision;
// createGpuModel refuses a model whose largest buffer the device cannot bind.
//
// The activation count follows layerForward (src/model/transformer.ts) tensor by tensor;
// src/model/memory.test.ts holds the two equal by counting what a real forward pass keeps.
import { BYTES_PER_ELEMENT, type DType } from '../gpu/tensor.ts';
import { resolveTargets } from './architecture.ts';
import { moduleParts, type ModelConfig } from './config.ts';
import { gpuDType, WEIGHT_PRECISIONS, type ModelWeights, type WeightPrecision } from './weights.ts';

/** One weight as the GPU would keep it. */
export interface StoredWeight {
  name: string;
  dtype: DType;
  bytes: number;
}

/** Each weight's dtype on the GPU at `precision`, and its size there. */
export function storedWeights(weights: ModelWeights, precision: WeightPrecision): StoredWeight[] {
  return [...weights].map(([name, t]) => {
    const dtype = gpuDType(t, precision);
    return { name, dtype, bytes: t.data.length * BYTES_PER_ELEMENT[dtype] };
  });
}

/** The weights at one precision: their bytes, dtypes (most bytes first) and largest buffer. */
export interface WeightMemory {
  precision: WeightPrecision;
  bytes: number;
  dtypes: DType[];
  largest: { name: string; bytes: number };
}

export function weightMemory(weights: ModelWeights, precision: WeightPrecision): WeightMemory {
  const stored = storedWeights(weights, precision);
  const byDType = new Map<DType, number>();
  for (const w of stored) byDType.set(w.dtype, (byDType.get(w.dtype) ?? 0) + w.bytes);
  return {
    precision,
    bytes: stored.reduce((n, w) => n + w.bytes, 0),
    dtypes: [...byDType].sort((a, b) => b[1] - a[1]).map(([dtype]) => dtype),
    largest: stored.reduce((worst, w) => (w.bytes > worst.bytes ? w : worst), {
      name: '',
      bytes: 0,
    }),
  };
}

/** The weights at every precision the studio offers. */
export function weightMemoryByPrecision(weights: ModelWeights): WeightMemory[] {
  return WEIGHT_PRECISIONS.map((p) => weightMemory(weights, p));
}

/** The f32 KV cache of every layer at the model's full context (what a runner allocates). */
export function kvCacheBytes(config: ModelConfig): number {
  return 4 * 2 * config.numLayers * config.maxPositions * config.numKvHeads * config.headDim;
}

/** What one micro-batch of training looks like, for its memory. */
export interface TrainingShape {
  /** Tokens per micro-batch: sequences × sequence length. */
  tokens: number;
  rank: number;
  /** Target modules or keywords (`all-linear`), as a LoraSpec names them. */
  targets: readonly string[];
  /** Dropout on the adapters' inputs keeps a masked copy of each input. */
  dropout: number;
  /** Keep only each layer's input and recompute the rest in the backward pass. */
  recompute: boolean;
}

/**
 * f32 values layerForward keeps per token of one layer with plain LoRA terms of `rank` on the
 * `targeted` modules (none: the base model), the layer's input excluded (it is the previous
 * layer's output).
 */
export function layerActivationsPerToken(
  config: ModelConfig,
  targeted: ReadonlySet<string>,
  rank: number,
  dropout: boolean,
): number {
  const { arch, hiddenSize: d, numHeads } = config;
  let n = 0;
  for (const m of arch.modules) {
    n += m.out; // x·Wᵀ
    if (m.bias) n += m.out; // + bias, a new tensor
    if (moduleParts(config, m).length > 1) n += m.out; // the parts sliced out of a fused output
    if (targeted.has(m.name)) n += rank + (dropout ? m.in : 0); // h = drop(x)·Aᵀ, drop(x)
  }
  const q = numHeads * config.headDim;
  if (arch.qkNorm) n += q + config.numKvHeads * config.headDim; // q and k after their norms
  n += q + numHeads; // attention output and log-sum-exp
  n += d * 4; // input norm, residual after attention, MLP norm, layer output
  n += config.intermediateSize; // the activation
  if (arch.norms.postAttention) n += d;
  if (arch.norms.postMlp) n += d;
  return n;
}

/**
 * Peak bytes of activations in a training step: the embeddings, every layer's kept activations
 * (or with recompute only its input, plus one layer's rebuilt), and the larger of the head's
 * (final norm, logits and their gradient in place) and one layer's backward scratch, taken to be
 * as large as its forward activations.
 */
export function trainingActivationBytes(config: ModelConfig, shape: TrainingShape): number {
  const targeted = new Set(resolveTargets(config.arch, shape.targets));
  const layer = layerActivationsPerToken(config, targeted, shape.rank, shape.dropout > 0);
  const d = config.hiddenSize;
  const kept = shape.recompute ? config.numLayers * d + layer : config.numLayers * layer;
  const head = d + config.vocabSize;
  return 4 * shape.tokens * (d + kept + Math.max(head, layer));
}

/** Trainable adapter values: r·(in + out) per targeted module and layer. */
export function adapterParameters(
  config: ModelConfig,
  shape: Pick<TrainingShape, 'rank' | 'targets'>,
): number {
  const targeted = new Set(resolveTargets(config.arch, shape.targets));
  const perLayer = config.arch.modules
    .filter((m) => targeted.has(m.name))
    .reduce((n, m) => n + shape.rank * (m.in + m.out), 0);
  return config.numLayers * perLayer;
}

/** The factors, their gradients and AdamW's two moments, in f32. */
export function optimiserBytes(
  config: ModelConfig,
  shape: Pick<TrainingShape, 'rank' | 'targets'>,
): number {
  return 4 * 4 * adapterParameters(config, shape);
}
