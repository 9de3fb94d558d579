// Matmul benchmark cases and the timing loop for our kernel, shared by the browser page
// (matmul.bench.page.ts, which also times TF.js) and the Node run (`lora-studio bench`).
import type { Gpu } from '../gpu/device.ts';
import { Batch } from '../gpu/dispatch.ts';
import { readF32 } from '../gpu/readback.ts';
import { medianMs } from '../gpu/timing.ts';
import { releaseTensor, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import { matmul } from './matmul.ts';
import { gaussian } from './random.ts';
import type { NamedProblem } from './matmul-tuning.ts';

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
    return await medianMs(async (iters) => {
      const batch = new Batch(gpu);
      const outs: Tensor[] = [];
      for (let i = 0; i < iters; i++)
        outs.push(matmul(batch, a, b, { transA: c.transA, transB: c.transB }));
      await batch.submit();
      await readF32(gpu, outs[outs.length - 1]);
      releaseTensor(gpu, ...outs);
    }, reps);
  } finally {
    releaseTensor(gpu, a, b);
  }
}
