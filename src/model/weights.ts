import type { HalfDType } from '../gpu/half.ts';
import type { ModelConfig } from './config.ts';
import { dtypeOfGgml, quantType, type DType, type QuantDType } from '../gpu/tensor.ts';
import type { GgmlType } from './gguf/quant-types.ts';

/** One weight tensor in HF layout (Linear weights are (out, in)), as f32 on the host. */
export interface HostTensor {
  shape: number[];
  data: Float32Array;
  /** The half-precision format the file stored it in: its values are exact in that format. */
  half?: HalfDType;
  /**
   * A GGUF file's quantized blocks of this tensor (Q8_0, Q4_K…; not F32/F16/BF16), rows in the
   * engine's order (llama's q/k rows un-permuted, block rows moved whole); `data` is their exact
   * dequantization. Kernels that read blocks directly take them from here.
   */
  quantized?: { type: GgmlType; blocks: Uint8Array };
}

/** A model's weights by HF name, e.g. `model.layers.0.self_attn.q_proj.weight`. */
export type ModelWeights = Map<string, HostTensor>;

/** A model's weights by name, each read when asked (so two models need not sit in memory). */
export interface WeightSource {
  config: ModelConfig;
  /** Every weight the architecture reads. */
  names: string[];
  read(name: string): Promise<HostTensor>;
  /** The Hub repo the file names as its origin, where it names one (GGUF metadata). */
  hubId?: string;
}

/**
 * How the weight matrices (linear modules, embedding, output head: nearly all of a model's
 * parameters) are kept on the GPU: `file` keeps the half precision or the GGUF quantization the
 * file stored them in (exact, a half to an eighth of the memory), `f32` widens them, `f16` and
 * `bf16` round every one to that format, and `q8_0`, `q4_k` and `nf4` quantize them as they are
 * uploaded (src/model/quantize.ts: 8.5, 4.5 and about 4.13 bits a weight). Norms and biases stay
 * f32. Kernels read half-precision and quantized matrices directly where they are matmul's B
 * operand or an embedding table; other code widens them (src/linalg/widen.ts).
 */
export type WeightPrecision = 'file' | 'f32' | 'f16' | 'bf16' | LoadQuantDType;
/** The formats a model is quantized into on load (ggml's Q8_0 and Q4_K, bitsandbytes' NF4). */
export type LoadQuantDType = Extract<QuantDType, 'q8_0' | 'q4_k' | 'nf4'>;
export const WEIGHT_PRECISIONS: readonly WeightPrecision[] = [
  'file',
  'f32',
  'f16',
  'bf16',
  'q8_0',
  'q4_k',
  'nf4',
];

/**
 * What a quantized precision falls back to for a matrix it cannot hold: rows that are not whole
 * blocks (Q4_K needs rows of 256 values, so GPT-2's 768 are fine but SmolLM's 576 are not; NF4
 * rows of 64 and whole blocks of 16,384 values in all), then q8_0 (rows of 32), then f16.
 */
const FALLBACK: Readonly<Record<LoadQuantDType, LoadQuantDType | 'f16'>> = {
  q4_k: 'q8_0',
  nf4: 'q8_0',
  q8_0: 'f16',
};

/** The first of `dtype` and its fallbacks that holds a [rows, cols] matrix. */
function heldIn(dtype: LoadQuantDType, [rows, cols]: readonly number[]): DType {
  const { blockSize, rowMultiple = blockSize } = quantType(dtype);
  if (cols % rowMultiple === 0 && (rows * cols) % blockSize === 0) return dtype;
  const next = FALLBACK[dtype];
  return next === 'f16' ? next : heldIn(next, [rows, cols]);
}

/**
 * The dtype a weight is kept in on the GPU: matrices (2-D) as `precision` says, the rest f32.
 * `file` keeps a GGUF file's quantized blocks as they are (kernels decode them as they read); a
 * quantized precision takes the first of it and its fallbacks that holds the matrix.
 */
export function gpuDType(t: HostTensor, precision: WeightPrecision): DType {
  if (t.shape.length !== 2 || precision === 'f32') return 'f32';
  if (precision === 'file') {
    if (t.quantized) return dtypeOfGgml(t.quantized.type);
    return t.half ?? 'f32';
  }
  if (precision === 'f16' || precision === 'bf16') return precision;
  return heldIn(precision, t.shape);
}

/** A rows × cols row-major matrix, transposed. */
export function transpose(x: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(x.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = x[i * cols + j];
  return t;
}
