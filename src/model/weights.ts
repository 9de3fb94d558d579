import type { HalfDType } from '../gpu/half.ts';
import { dtypeOfGgml, type DType } from '../gpu/tensor.ts';
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

/**
 * How the weight matrices (linear modules, embedding, output head: nearly all of a model's
 * parameters) are kept on the GPU: `file` keeps the half precision or the GGUF quantization the
 * file stored them in (exact, a half to an eighth of the memory), `f32` widens them, `f16` and `bf16` round every one to that format.
 * Norms and biases stay f32. Kernels read half-precision matrices directly where they are
 * matmul's B operand or an embedding table; other code widens them (src/linalg/widen.ts).
 */
export type WeightPrecision = 'file' | 'f32' | 'f16' | 'bf16';
export const WEIGHT_PRECISIONS: readonly WeightPrecision[] = ['file', 'f32', 'f16', 'bf16'];

/**
 * The dtype a weight is kept in on the GPU: matrices (2-D) as `precision` says, the rest f32.
 * `file` keeps a GGUF file's quantized blocks as they are (kernels decode them as they read).
 */
export function gpuDType(t: HostTensor, precision: WeightPrecision): DType {
  if (t.shape.length !== 2 || precision === 'f32') return 'f32';
  if (precision === 'file') {
    if (t.quantized) return dtypeOfGgml(t.quantized.type);
    return t.half ?? 'f32';
  }
  return precision;
}

/** A rows × cols row-major matrix, transposed. */
export function transpose(x: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(x.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = x[i * cols + j];
  return t;
}
