// The forward pass on the GPU: the same computation as cpu/forward.ts, batched over the tokens
// of a prompt (prefill) or one token at a time (decode), with a KV cache per layer. One batch
// (one submit) per call; only the last token's logits come back.
import type { Gpu } from '../gpu/device.ts';
import { formatBytes } from '../gpu/buffers.ts';
import { Batch } from '../gpu/dispatch.ts';
import { GpuError } from '../gpu/errors.ts';
import { readF32 } from '../gpu/readback.ts';
import { createTensor, releaseTensor, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import { binary, unary } from '../linalg/elementwise.ts';
import { matmul } from '../linalg/matmul.ts';
import type { ModelConfig } from './config.ts';
import { attention, gatherRows, rmsNorm, rope, ropeTable, writeRows } from './ops.ts';
import type { ModelWeights } from './weights.ts';

export interface GpuModel {
  readonly config: ModelConfig;
  /**
   * Runs `tokens` at positions pos0 … pos0 + n − 1 (after the cache holds pos0 positions) and
   * returns the logits that follow the last one.
   */
  forward(tokens: readonly number[], pos0: number): Promise<Float32Array>;
  /** Like forward, but the logits after every token: [tokens × vocab]. */
  forwardAll(tokens: readonly number[], pos0: number): Promise<Float32Array>;
  /** Frees the weights and caches. */
  dispose(): void;
}

/**
 * Refuses, before anything is uploaded, a model with a tensor (weight or KV cache) larger than
 * one GPU buffer binding may be: a clear message instead of a failure halfway through loading.
 */
function checkFits(gpu: Gpu, config: ModelConfig, weights: ModelWeights): void {
  const limit = Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
  const cacheBytes = 4 * config.maxPositions * config.numKvHeads * config.headDim;
  const largest = [...weights].reduce(
    (worst, [name, t]) =>
      4 * t.data.length > worst.bytes ? { name, bytes: 4 * t.data.length } : worst,
    { name: `the KV cache of one layer (${config.maxPositions} positions)`, bytes: cacheBytes },
  );
  if (largest.bytes > limit) {
    throw new GpuError(
      `${largest.name} needs ${formatBytes(largest.bytes)} in one buffer; this GPU allows ${formatBytes(limit)}`,
      'loading the model',
      'out-of-memory',
    );
  }
}

export function createGpuModel(gpu: Gpu, config: ModelConfig, weights: ModelWeights): GpuModel {
  checkFits(gpu, config, weights);
  const tensors = new Map<string, Tensor>();
  for (const [name, t] of weights)
    tensors.set(name, uploadTensor(gpu, t.data, t.shape, 'f32', name));
  const w = (name: string): Tensor => {
    const t = tensors.get(name);
    if (!t) throw new Error(`missing weight ${name}`);
    return t;
  };
  const { numLayers, numHeads, numKvHeads, headDim, maxPositions } = config;
  const kvDim = numKvHeads * headDim;
  const cosSin = uploadTensor(
    gpu,
    ropeTable(maxPositions, headDim, config.ropeTheta),
    [maxPositions, headDim / 2, 2],
    'f32',
    'rope table',
  );
  const kCache = Array.from({ length: numLayers }, (_, l) =>
    createTensor(gpu, [maxPositions, kvDim], 'f32', `k cache ${l}`),
  );
  const vCache = Array.from({ length: numLayers }, (_, l) =>
    createTensor(gpu, [maxPositions, kvDim], 'f32', `v cache ${l}`),
  );
  const head = config.tieWordEmbeddings ? w('model.embed_tokens.weight') : w('lm_head.weight');
  const shape = { heads: numHeads, kvHeads: numKvHeads, headDim };

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
    const keep = (t: Tensor) => {
      owned.push(t);
      return t;
    };
    const linear = (x: Tensor, name: string, bias?: string) => {
      const y = keep(matmul(batch, x, w(name), { transB: true }));
      return bias && config.attentionBias ? keep(binary(batch, 'add', y, w(bias))) : y;
    };
    const ids = keep(uploadTensor(gpu, Uint32Array.from(tokens), [tokens.length], 'u32', 'tokens'));
    let x = keep(gatherRows(batch, w('model.embed_tokens.weight'), ids));
    for (let l = 0; l < numLayers; l++) {
      const p = `model.layers.${l}.`;
      const h = keep(rmsNorm(batch, x, w(`${p}input_layernorm.weight`), config.rmsNormEps));
      const q = linear(h, `${p}self_attn.q_proj.weight`, `${p}self_attn.q_proj.bias`);
      const k = linear(h, `${p}self_attn.k_proj.weight`, `${p}self_attn.k_proj.bias`);
      const v = linear(h, `${p}self_attn.v_proj.weight`, `${p}self_attn.v_proj.bias`);
      rope(batch, q, cosSin, numHeads, headDim, pos0);
      rope(batch, k, cosSin, numKvHeads, headDim, pos0);
      writeRows(batch, kCache[l], k, pos0);
      writeRows(batch, vCache[l], v, pos0);
      const attended = keep(attention(batch, q, kCache[l], vCache[l], shape, pos0));
      x = keep(binary(batch, 'add', x, linear(attended, `${p}self_attn.o_proj.weight`)));
      const m = keep(
        rmsNorm(batch, x, w(`${p}post_attention_layernorm.weight`), config.rmsNormEps),
      );
      const gate = keep(unary(batch, 'silu', linear(m, `${p}mlp.gate_proj.weight`)));
      const act = keep(binary(batch, 'mul', gate, linear(m, `${p}mlp.up_proj.weight`)));
      x = keep(binary(batch, 'add', x, linear(act, `${p}mlp.down_proj.weight`)));
    }
    if (!allPositions) {
      const lastId = keep(uploadTensor(gpu, Uint32Array.of(tokens.length - 1), [1], 'u32', 'last'));
      x = keep(gatherRows(batch, x, lastId));
    }
    const normed = keep(rmsNorm(batch, x, w('model.norm.weight'), config.rmsNormEps));
    const logits = keep(matmul(batch, normed, head, { transB: true }));
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
      releaseTensor(gpu, ...tensors.values(), cosSin, ...kCache, ...vCache);
    },
  };
}
