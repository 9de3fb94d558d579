// The forward pass on the GPU: the same computation as cpu/reference.ts, batched over the tokens
// of a prompt (prefill) or one token at a time (decode), with a KV cache per layer. One batch
// (one submit) per call; only the last token's logits come back. The layers themselves are
// transformer.ts's, shared with training.
import type { Gpu } from '../gpu/device.ts';
import { formatBytes } from '../units.ts';
import { Batch } from '../gpu/dispatch.ts';
import { GpuError } from '../gpu/errors.ts';
import { readF32 } from '../gpu/readback.ts';
import { encodeHalf } from '../gpu/half.ts';
import {
  createTensor,
  isQuantized,
  releaseTensor,
  uploadTensor,
  type DType,
  type Tensor,
} from '../gpu/tensor.ts';
import type { ModelConfig } from './config.ts';
import { gatherRows, ropeTableFrom } from './ops.ts';
import { blocksOf } from './quantize.ts';
import {
  embed,
  layerForward,
  outputHead,
  type AdapterTerm,
  type Transformer,
} from './transformer.ts';
import {
  kvCacheBytes,
  storedWeights,
  weightMemory,
  type StoredWeight,
  type WeightMemory,
} from './memory.ts';
import { type HostTensor, type ModelWeights, type WeightPrecision } from './weights.ts';

/** Runs tokens through a transformer with its own KV cache. */
export interface Runner {
  readonly config: ModelConfig;
  /**
   * Runs `tokens` at positions pos0 … pos0 + n − 1 (after the cache holds pos0 positions) and
   * returns the logits that follow the last one.
   */
  forward(tokens: readonly number[], pos0: number): Promise<Float32Array>;
  /** Like forward, but the logits after every token: [tokens × vocab]. */
  forwardAll(tokens: readonly number[], pos0: number): Promise<Float32Array>;
  /** Frees the caches (and, for a GpuModel, the weights). */
  dispose(): void;
}

/** A loaded model: its weights on the GPU and a runner over them. */
export interface GpuModel extends Runner {
  /** The weights and the adapter terms applied at run time (none at first). */
  readonly transformer: Transformer;
  /**
   * The base model alone, whatever is applied: what training and adapter loading build on. Its
   * weight matrices may be f16 or bf16 (WeightPrecision): matmul reads them as B and the
   * embedding lookup as a table directly, other code widens them (src/linalg/widen.ts).
   */
  readonly base: Transformer;
  /** GPU memory the weights take. */
  readonly weightBytes: number;
  /** The dtypes the weights are kept in, the one holding most bytes first. */
  readonly weightDTypes: readonly DType[];
  /**
   * Replaces the adapter terms applied at run time, by module path, and the weights that stand in
   * for the base's (modules_to_save), by name; empty maps: the base model.
   */
  setAdapters(
    terms: ReadonlyMap<string, readonly AdapterTerm[]>,
    overrides?: ReadonlyMap<string, Tensor>,
  ): void;
}

/**
 * Refuses, before anything is uploaded, a model with a tensor (weight or KV cache) larger than
 * one GPU buffer binding may be: a clear message instead of a failure halfway through loading.
 */
function checkFits(
  gpu: Gpu,
  config: ModelConfig,
  weights: ModelWeights,
  memory: WeightMemory,
): void {
  const limit = bindingLimit(gpu);
  const cacheBytes = kvCacheBytes(config) / (2 * config.numLayers);
  const cache = {
    name: `the KV cache of one layer (${config.maxPositions} positions)`,
    bytes: cacheBytes,
  };
  const largest = memory.largest.bytes > cacheBytes ? memory.largest : cache;
  if (largest.bytes <= limit) return;
  // A weight too large in this precision may fit in a smaller one: name the first that does.
  const smaller =
    largest === cache || cacheBytes > limit
      ? undefined
      : (['f16', 'q8_0', 'q4_k'] as const).find(
          (p) => weightMemory(weights, p).largest.bytes <= limit,
        );
  throw new GpuError(
    `${largest.name} needs ${formatBytes(largest.bytes)} in one buffer; this GPU allows ${formatBytes(limit)}` +
      (smaller ? `; every weight fits with --weights ${smaller}` : ''),
    'loading the model',
    'out-of-memory',
  );
}

/** The most bytes one storage buffer binding may hold on this device. */
export function bindingLimit(gpu: Gpu): number {
  return Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
}

/**
 * One weight on the GPU. A weight quantized on load is quantized here, so the host holds at most
 * one tensor's blocks beside the f32 weights.
 */
function upload(gpu: Gpu, t: HostTensor, { name, dtype }: StoredWeight): Tensor {
  if (isQuantized(dtype)) return uploadTensor(gpu, blocksOf(t, dtype), t.shape, dtype, name);
  if (dtype === 'f16' || dtype === 'bf16') {
    return uploadTensor(gpu, encodeHalf(t.data, dtype), t.shape, dtype, name);
  }
  return uploadTensor(gpu, t.data, t.shape, 'f32', name);
}

export function createGpuModel(
  gpu: Gpu,
  config: ModelConfig,
  weights: ModelWeights,
  precision: WeightPrecision = 'file',
): GpuModel {
  const stored = storedWeights(weights, precision);
  const memory = weightMemory(weights, precision);
  checkFits(gpu, config, weights, memory);
  const tensors = new Map<string, Tensor>();
  for (const w of stored) {
    const host = weights.get(w.name);
    if (host) tensors.set(w.name, upload(gpu, host, w));
  }
  const ropeTables = ropeTablesFor(gpu, config);
  let adapters: ReadonlyMap<string, readonly AdapterTerm[]> = new Map();
  let overridden: ReadonlyMap<string, Tensor> = new Map();
  const base: Transformer = {
    config,
    ropeTables,
    weight(name) {
      const t = tensors.get(name);
      if (!t) throw new Error(`missing weight ${name}`);
      return t;
    },
    adapterTerms: () => [],
  };
  const transformer: Transformer = {
    ...base,
    weight: (name) => overridden.get(name) ?? base.weight(name),
    adapterTerms: (path) => adapters.get(path) ?? [],
  };
  const runner = createRunner(gpu, transformer);
  return {
    ...runner,
    transformer,
    base,
    weightBytes: memory.bytes,
    weightDTypes: memory.dtypes,
    setAdapters(terms, overrides = new Map()) {
      adapters = terms;
      overridden = overrides;
    },
    dispose() {
      runner.dispose();
      releaseTensor(gpu, ...tensors.values(), ...ropeTables);
    },
  };
}

/** The architecture's RoPE tables on the GPU, for the positions the model runs. */
export function ropeTablesFor(gpu: Gpu, config: ModelConfig): Tensor[] {
  return config.arch.ropes.map((r, i) =>
    uploadTensor(
      gpu,
      ropeTableFrom(config.maxPositions, r.invFreq, r.attentionFactor),
      [config.maxPositions, r.invFreq.length, 2],
      'f32',
      `rope table ${i}`,
    ),
  );
}

/** A runner with a KV cache of the model's full context over any transformer view. */
export function createRunner(gpu: Gpu, t: Transformer): Runner {
  const { config } = t;
  const { numLayers, numKvHeads, headDim, maxPositions } = config;
  const kvDim = numKvHeads * headDim;
  const caches = Array.from({ length: numLayers }, (_, l) => ({
    k: createTensor(gpu, [maxPositions, kvDim], 'f32', `k cache ${l}`),
    v: createTensor(gpu, [maxPositions, kvDim], 'f32', `v cache ${l}`),
  }));

  async function run(
    tokens: readonly number[],
    pos0: number,
    allPositions: boolean,
  ): Promise<Float32Array> {
    if (tokens.length === 0) throw new RangeError('forward: no tokens');
    if (pos0 + tokens.length > maxPositions) {
      throw new RangeError(
        `forward: positions up to ${pos0 + tokens.length} exceed the model's ${maxPositions}`,
      );
    }
    const batch = new Batch(gpu);
    const owned: Tensor[] = [];
    const keep = (x: Tensor) => {
      owned.push(x);
      return x;
    };
    const ids = keep(uploadTensor(gpu, Uint32Array.from(tokens), [tokens.length], 'u32', 'tokens'));
    const lastId = keep(uploadTensor(gpu, Uint32Array.of(tokens.length - 1), [1], 'u32', 'last'));
    let x = embed(batch, t, ids, keep, { pos0 });
    for (let l = 0; l < numLayers; l++) {
      x = layerForward(batch, t, l, x, { at: { pos0 }, cache: caches[l], keep }).out;
    }
    if (!allPositions) x = keep(gatherRows(batch, x, lastId));
    const { logits } = outputHead(batch, t, x, keep);
    try {
      await batch.submit();
      return await readF32(gpu, logits);
    } finally {
      releaseTensor(gpu, ...owned);
    }
  }

  return {
    config,
    forward: (tokens, pos0) => run(tokens, pos0, false),
    forwardAll: (tokens, pos0) => run(tokens, pos0, true),
    dispose() {
      releaseTensor(gpu, ...caches.flatMap((c) => [c.k, c.v]));
    },
  };
}
