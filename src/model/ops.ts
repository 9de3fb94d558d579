// The transformer-specific GPU ops (shaders/rmsnorm, layernorm, rope, attention, activation,
// rows.wgsl). Each records into a batch; outputs are new tensors the caller owns, except the
// in-place rope and writeRows.
import type { Gpu } from '../gpu/device.ts';
import { linearGrid, packParams, type Batch } from '../gpu/dispatch.ts';
import { ShapeError } from '../gpu/errors.ts';
import { createTensor, isQuantized, shapeString, type Tensor } from '../gpu/tensor.ts';

const ROW_WG = 64;
/** shaders/attention.wgsl's private row arrays. */
export const MAX_HEAD_DIM = 128;
const ELEMENT_WG = 256;

/**
 * How a row-wise kernel (rmsnorm, cross_entropy) is laid out: a workgroup per row whose
 * invocations share the row through workgroup memory, or, on CPU implementations where barriers
 * are the expensive part, one invocation per row (the `_serial` entry points).
 */
export function rowLayout(
  gpu: Gpu,
  entryPoint: string,
  rows: number,
  wg: number,
): { entryPoint: string; grid: [number, number]; constants: { WG: number } } {
  if (gpu.adapter.isFallback) {
    return {
      entryPoint: `${entryPoint}_serial`,
      grid: linearGrid(Math.ceil(rows / ROW_WG), gpu),
      constants: { WG: ROW_WG },
    };
  }
  return { entryPoint, grid: linearGrid(rows, gpu), constants: { WG: wg } };
}

/**
 * y = x · (offset + w) / √(mean(x²) + eps) per row of x [rows × d], d being x's last dimension
 * (a view such as q as [tokens·heads × headDim] normalises each head). Gemma's norms use
 * offset 1: x·(1 + w).
 */
export function rmsNorm(batch: Batch, x: Tensor, weight: Tensor, eps: number, offset = 0): Tensor {
  const d = x.shape[x.shape.length - 1];
  const rows = x.numel / d;
  const y = createTensor(batch.gpu, x.shape, 'f32', 'rmsnorm');
  const layout = rowLayout(batch.gpu, 'main', rows, ROW_WG);
  const kernel = batch.gpu.pipelines.get({ shader: 'rmsnorm', ...layout });
  const params = packParams([{ u32: rows }, { u32: d }, { f32: eps }, { f32: offset }]);
  batch.dispatch(kernel, [x, weight, y], layout.grid, params, `rmsnorm ${shapeString(x.shape)}`);
  return y;
}

/**
 * y = (x − mean(x)) / √(var(x) + eps) · w + b per row of x [rows × d] (GPT-2's LayerNorm; the
 * biased variance, as torch).
 */
export function layerNorm(
  batch: Batch,
  x: Tensor,
  weight: Tensor,
  bias: Tensor,
  eps: number,
): Tensor {
  const d = x.shape[x.shape.length - 1];
  const rows = x.numel / d;
  const y = createTensor(batch.gpu, x.shape, 'f32', 'layernorm');
  const layout = rowLayout(batch.gpu, 'main', rows, ROW_WG);
  batch.dispatch(
    batch.gpu.pipelines.get({ shader: 'layernorm', ...layout }),
    [x, weight, bias, y],
    layout.grid,
    packParams([{ u32: rows }, { u32: d }, { f32: eps }]),
    `layernorm ${shapeString(x.shape)}`,
  );
  return y;
}

/** Where rope and attention find each token's position: see shaders/attention.wgsl. */
export interface Positions {
  /** Positions already in the cache before the first token (0 for training batches). */
  pos0: number;
  /** Tokens per packed sequence; positions restart at every multiple (default: one sequence). */
  seqLen?: number;
}

/**
 * Rotates x [tokens × heads × headDim] in place for positions `at`: within each head the first
 * `rotaryDims` values (all by default; fewer with a partial rotary factor) rotate, the rest pass
 * through. `cosSin` holds [positions × rotaryDims/2 × (cos, sin)] (see ropeTableFrom).
 * `inverse` rotates back: the backward pass.
 */
export function rope(
  batch: Batch,
  x: Tensor,
  cosSin: Tensor,
  heads: number,
  headDim: number,
  at: Positions,
  inverse = false,
  rotaryDims = headDim,
): void {
  if (rotaryDims % 2 !== 0 || rotaryDims <= 0 || rotaryDims > headDim)
    throw new ShapeError(
      `rope rotates an even count of a head's ${headDim} values, not ${rotaryDims}`,
    );
  const tokens = x.numel / (heads * headDim);
  const half = rotaryDims / 2;
  const kernel = batch.gpu.pipelines.get({ shader: 'rope', constants: { WG: ELEMENT_WG } });
  const params = packParams([
    { u32: tokens },
    { u32: heads },
    { u32: headDim },
    { u32: half },
    { u32: at.pos0 },
    { u32: at.seqLen ?? tokens },
    { f32: inverse ? -1 : 1 },
  ]);
  const count = tokens * heads * half;
  batch.dispatch(
    kernel,
    [x, cosSin],
    linearGrid(Math.ceil(count / ELEMENT_WG), batch.gpu),
    params,
    `rope${inverse ? ' backward' : ''} ${shapeString(x.shape)}`,
  );
}

/**
 * cos and sin of pos·f for each inverse frequency f, times `attentionFactor` (YaRN's and
 * LongRoPE's scaling of q and k), in f64 then rounded: [positions × invFreq.length × 2].
 */
export function ropeTableFrom(
  positions: number,
  invFreq: Float64Array,
  attentionFactor = 1,
): Float32Array {
  const half = invFreq.length;
  const table = new Float32Array(positions * half * 2);
  for (let pos = 0; pos < positions; pos++) {
    for (let j = 0; j < half; j++) {
      const angle = pos * invFreq[j];
      table[(pos * half + j) * 2] = Math.cos(angle) * attentionFactor;
      table[(pos * half + j) * 2 + 1] = Math.sin(angle) * attentionFactor;
    }
  }
  return table;
}

export interface AttentionShape {
  heads: number;
  kvHeads: number;
  headDim: number;
  /** Multiplies q·k (default 1/√headDim; Gemma 3: query_pre_attn_scalar^−½). */
  scale?: number;
  /**
   * Sliding window: the query at position p sees the keys at p − window + 1 … p of its sequence
   * (undefined or 0: all up to p).
   */
  window?: number;
}

/** The attention kernels' uniform, shared by forward and backward. */
export function attentionParams(tokens: number, s: AttentionShape, at: Positions): ArrayBuffer {
  if (s.headDim > MAX_HEAD_DIM)
    throw new ShapeError(
      `attention supports heads of up to ${MAX_HEAD_DIM} values, not ${s.headDim}`,
    );
  const window = s.window ?? 0;
  if (!Number.isInteger(window) || window < 0)
    throw new ShapeError(`an attention window is a count of keys, not ${window}`);
  return packParams([
    { u32: tokens },
    { u32: s.heads },
    { u32: s.kvHeads },
    { u32: s.headDim },
    { u32: at.pos0 },
    { u32: at.seqLen ?? tokens },
    { f32: s.scale ?? 1 / Math.sqrt(s.headDim) },
    { u32: window },
  ]);
}

/**
 * Causal attention of q [tokens × heads × headDim] over k, v [rows × kvHeads × headDim] (a KV
 * cache, or the batch's own keys), within `s.window` keys when set: the output and the
 * log-sum-exp per (token, head) that the backward pass needs.
 */
export function attention(
  batch: Batch,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  s: AttentionShape,
  at: Positions,
): { out: Tensor; lse: Tensor } {
  const tokens = q.numel / (s.heads * s.headDim);
  const out = createTensor(batch.gpu, q.shape, 'f32', 'attention');
  const lse = createTensor(batch.gpu, [tokens, s.heads], 'f32', 'attention lse');
  const kernel = batch.gpu.pipelines.get({
    shader: 'attention',
    constants: { WG: ROW_WG, HEAD_DIM: s.headDim },
  });
  batch.dispatch(
    kernel,
    [q, k, v, out, lse],
    linearGrid(Math.ceil((tokens * s.heads) / ROW_WG), batch.gpu),
    attentionParams(tokens, s, at),
    `attention ${shapeString(q.shape)} at ${at.pos0}`,
  );
  return { out, lse };
}

/** The activations of shaders/activation.wgsl; gelu_tanh is HF's gelu_pytorch_tanh and gelu_new. */
export type ActivationKind = 'silu' | 'gelu_tanh';

/** shaders/activation.wgsl's KIND values. */
const ACTIVATION_KIND: Readonly<Record<ActivationKind | 'softcap', number>> = {
  silu: 0,
  gelu_tanh: 1,
  softcap: 2,
};

/**
 * Records one of shaders/activation.wgsl's entry points over equally sized tensors (inputs, then
 * outputs, in the entry point's binding order); `cap` is softcap's. Shared with the backward
 * passes in src/train/kernels.ts.
 */
export function dispatchActivation(
  batch: Batch,
  entryPoint: 'forward' | 'backward' | 'gated_forward' | 'gated_backward',
  kind: ActivationKind | 'softcap',
  bindings: readonly Tensor[],
  cap = 1,
): void {
  const n = bindings[0].numel;
  if (bindings.some((t) => t.numel !== n))
    throw new ShapeError(
      `${kind} ${entryPoint} needs equal sizes, not ${bindings.map((t) => shapeString(t.shape)).join(', ')}`,
    );
  batch.dispatch(
    batch.gpu.pipelines.get({
      shader: 'activation',
      entryPoint,
      constants: { WG: ELEMENT_WG, KIND: ACTIVATION_KIND[kind] },
    }),
    bindings,
    linearGrid(Math.ceil(n / ELEMENT_WG), batch.gpu),
    packParams([{ u32: n }, { f32: cap }]),
    `${kind} ${entryPoint} ${shapeString(bindings[0].shape)}`,
  );
}

/** act = f(gate) · up, elementwise: the gated MLP (SwiGLU with silu, GeGLU with gelu_tanh). */
export function gatedActivation(
  batch: Batch,
  gate: Tensor,
  up: Tensor,
  kind: ActivationKind,
): Tensor {
  const act = createTensor(batch.gpu, gate.shape, 'f32', kind);
  dispatchActivation(batch, 'gated_forward', kind, [gate, up, act]);
  return act;
}

/** act = silu(gate) · up, elementwise (the SwiGLU MLP's gate). */
export function swiglu(batch: Batch, gate: Tensor, up: Tensor): Tensor {
  return gatedActivation(batch, gate, up, 'silu');
}

/** y = f(x), elementwise (GPT-2's MLP with gelu_tanh). */
export function activation(batch: Batch, x: Tensor, kind: ActivationKind): Tensor {
  const y = createTensor(batch.gpu, x.shape, 'f32', kind);
  dispatchActivation(batch, 'forward', kind, [x, y]);
  return y;
}

/** y = cap · tanh(x / cap), elementwise: logit soft-capping. */
export function softcap(batch: Batch, x: Tensor, cap: number): Tensor {
  const y = createTensor(batch.gpu, x.shape, 'f32', 'softcap');
  dispatchActivation(batch, 'forward', 'softcap', [x, y], cap);
  return y;
}

/** out[r, :] = table[ids[r], :] for table [n × width] (f32, half, quantized), u32 ids [rows]. */
export function gatherRows(batch: Batch, table: Tensor, ids: Tensor): Tensor {
  const width = table.shape[table.shape.length - 1];
  const out = createTensor(batch.gpu, [ids.numel, width], 'f32', 'gather');
  if (isQuantized(table.dtype)) {
    // Rows of a quantized table are whole blocks: one invocation decodes 4 values.
    const kernel = batch.gpu.pipelines.get({
      shader: 'dequant',
      uses: ['quant', `quant_${table.dtype}`],
      entryPoint: 'gather',
      constants: { WG: ELEMENT_WG },
    });
    batch.dispatch(
      kernel,
      [table, ids, out],
      linearGrid(Math.ceil(out.numel / 4 / ELEMENT_WG), batch.gpu),
      packParams([{ u32: out.numel }, { u32: width }]),
      `gather ${table.dtype} ${shapeString(out.shape)}`,
    );
    return out;
  }
  const half = table.dtype === 'f16' || table.dtype === 'bf16';
  const kernel = batch.gpu.pipelines.get({
    shader: 'rows',
    uses: ['half'],
    entryPoint: half ? 'gather_half' : 'gather',
    constants: { WG: ELEMENT_WG, ...(half && { BF16: Number(table.dtype === 'bf16') }) },
  });
  const params = packParams([{ u32: ids.numel }, { u32: width }, { u32: 0 }]);
  batch.dispatch(
    kernel,
    [table, ids, out],
    linearGrid(Math.ceil(out.numel / ELEMENT_WG), batch.gpu),
    params,
    `gather ${shapeString(out.shape)}`,
  );
  return out;
}

/** dst[row0 + r, :] = src[r, :]: appends src's rows to a cache at row0. */
export function writeRows(batch: Batch, dst: Tensor, src: Tensor, row0: number): void {
  const width = dst.shape[dst.shape.length - 1];
  const rows = src.numel / width;
  const kernel = batch.gpu.pipelines.get({
    shader: 'rows',
    uses: ['half'],
    entryPoint: 'write_at',
    constants: { WG: ELEMENT_WG },
  });
  const params = packParams([{ u32: rows }, { u32: width }, { u32: row0 }]);
  batch.dispatch(
    kernel,
    [src, dst],
    linearGrid(Math.ceil(src.numel / ELEMENT_WG), batch.gpu),
    params,
    `write rows ${row0}…`,
  );
}

/** Inverted dropout: x / (1 − p) where a hash of (seed, index) keeps it, else 0. */
export function dropout(batch: Batch, x: Tensor, p: number, seed: number): Tensor {
  const y = createTensor(batch.gpu, x.shape, 'f32', 'dropout');
  const kernel = batch.gpu.pipelines.get({
    shader: 'dropout',
    uses: ['random'],
    constants: { WG: ELEMENT_WG },
  });
  batch.dispatch(
    kernel,
    [x, y],
    linearGrid(Math.ceil(x.numel / ELEMENT_WG), batch.gpu),
    packParams([{ u32: x.numel }, { u32: seed >>> 0 }, { f32: 1 - p }]),
    `dropout ${shapeString(x.shape)}`,
  );
  return y;
}
