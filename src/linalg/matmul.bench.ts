// Matmul benchmark cases and the timing loop for our kernel, shared by the browser page
// (matmul.bench.page.ts, which also times TF.js) and the Node run (`lora-studio bench`).
import type { Gpu } from '../gpu/device.ts';
import { releaseTensor, uploadTensor } from '../gpu/tensor.ts';
import { gaussian } from './random.ts';
import { timeMatmul, type NamedProblem } from './matmul-tuning.ts';

export function operandShapes(c: NamedProblem): { a: number[]; b: number[] } {
  return { a: c.transA ? [c.K, c.M] : [c.M, c.K], b: c.transB ? [c.N, c.K] : [c.K, c.N] };
}

export function gflops(c: NamedProblem, ms: number): number {
  return (2 * c.M * c.N * c.K) / (ms * 1e6);
}

/** Median ms per product for our kernel: `iters` products in one batch, one readback. */
export async function timeOurMatmul(gpu: Gpu, c: NamedProblem, reps: number): Promise<number> {
  const shapes = operandShapes(c);
  const a = uploadTensor(gpu, gaussian(c.M * c.K, 1), shapes.a, 'f32');
  const b = uploadTensor(gpu, gaussian(c.K * c.N, 2), shapes.b, 'f32');
  try {
    return await timeMatmul(gpu, a, b, { transA: c.transA, transB: c.transB }, reps);
  } finally {
    releaseTensor(gpu, a, b);
  }
}
