import type { HalfDType } from '../gpu/half.ts';
import type { DType } from '../gpu/tensor.ts';
import { LINEAR_MODULES } from './modules.ts';

/** One weight tensor in HF layout (Linear weights are (out, in)), as f32 on the host. */
export interface HostTensor {
  shape: number[];
  data: Float32Array;
  /** The half-precision format the file stored it in: its values are exact in that format. */
  half?: HalfDType;
}

/** A model's weights by HF name, e.g. `model.layers.0.self_attn.q_proj.weight`. */
export type ModelWeights = Map<string, HostTensor>;

/**
 * How the linear modules' weights (most of a model's parameters) are kept on the GPU: `file`
 * keeps the half precision the file stored them in (exact, half the memory), `f32` widens them,
 * `f16` and `bf16` round every one to that format. Embeddings, norms and biases stay f32: they
 * feed kernels other than matmul's B operand, the only reader of half-precision weights.
 */
export type WeightPrecision = 'file' | 'f32' | 'f16' | 'bf16';
export const WEIGHT_PRECISIONS: readonly WeightPrecision[] = ['file', 'f32', 'f16', 'bf16'];

const LINEAR_WEIGHT = new RegExp(`\\.(${LINEAR_MODULES.join('|')})\\.weight$`);

/** The dtype a weight is kept in on the GPU. */
export function gpuDType(name: string, t: HostTensor, precision: WeightPrecision): DType {
  if (!LINEAR_WEIGHT.test(name) || precision === 'f32') return 'f32';
  if (precision === 'file') return t.half ?? 'f32';
  return precision;
}
