// Matmul benchmark cases and the timing loop for our kernel, shared by the browser page
// (matmul.bench.page.ts, which also times TF.js) and the Node run (`lora-studio bench`).
import type { Gpu } from '../gpu/device.ts';
import { encodeHalf, type HalfDType } from '../gpu/half.ts';
import { releaseTensor, uploadTensor } from '../gpu/tensor.ts';
import { gaussian } from './random.ts';
import { timeMatmul, type NamedProblem } from './matmul-tuning.ts';

/**
 * Products with a frozen weight W as B, where half-precision storage applies (SmolLM-135M's
 * gate_proj, 128 tokens): forward x·Wᵀ and backward ∂x = g·W, and a square.
 */
export const WEIGHT_PROBLEMS: readonly NamedProblem[] = [
  { name: '512²', M: 512, N: 512, K: 512, transA: false, transB: false },
  { name: 'x·Wᵀ [128×576]·[576×1536]', M: 128, N: 1536, K: 576, transA: false, transB: true },
  { name: 'g·W [128×1536]·[1536×576]', M: 128, N: 576, K: 1536, transA: false, transB: false },
];

export function operandShapes(c: NamedProblem): { a: number[]; b: number[] } {
  return { a: c.transA ? [c.K, c.M] : [c.M, c.K], b: c.transB ? [c.N, c.K] : [c.K, c.N] };
}

export function gflops(c: NamedProblem, ms: number): number {
  return (2 * c.M * c.N * c.K) / (ms * 1e6);
}

/**
 * Median ms per product for our kernel: `iters` products in one batch, one readback. `bDType`
 * stores B in half precision (frozen weights).
 */
export async function timeOurMatmul(
  gpu: Gpu,
  c: NamedProblem,
  reps: number,
  bDType: 'f32' | HalfDType = 'f32',
): Promise<number> {
  const shapes = operandShapes(c);
  const a = uploadTensor(gpu, gaussian(c.M * c.K, 1), shapes.a, 'f32');
  const values = gaussian(c.K * c.N, 2);
  const b =
    bDType === 'f32'
      ? uploadTensor(gpu, values, shapes.b, 'f32')
      : uploadTensor(gpu, encodeHalf(values, bDType), shapes.b, bDType);
  try {
    return await timeMatmul(gpu, a, b, { transA: c.transA, transB: c.transB }, reps);
  } finally {
    releaseTensor(gpu, a, b);
  }
}
