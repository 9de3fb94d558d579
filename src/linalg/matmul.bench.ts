// Matmul benchmark cases and the timing loop for our kernel, shared by the browser page
// (matmul.bench.page.ts, which also times TF.js) and the Node run (`lora-studio bench`).
import type { Gpu } from '../gpu/device.ts';
import { Batch } from '../gpu/dispatch.ts';
import { readF32 } from '../gpu/readback.ts';
import { releaseTensor, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import { matmul } from './matmul.ts';

export interface MatmulCase {
  name: string;
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
}

/** Squares, and the three products of a LoRA layer (d = 288, rank 8, 2048 tokens). */
export const MATMUL_CASES: MatmulCase[] = [
  { name: '256²', M: 256, N: 256, K: 256, transA: false, transB: false },
  { name: '512²', M: 512, N: 512, K: 512, transA: false, transB: false },
  { name: '1024²', M: 1024, N: 1024, K: 1024, transA: false, transB: false },
  { name: 'x·Aᵀ [2048×288]·[288×8]', M: 2048, N: 8, K: 288, transA: false, transB: true },
  { name: 'h·Bᵀ [2048×8]·[8×288]', M: 2048, N: 288, K: 8, transA: false, transB: true },
  { name: 'gᵀ·x [288×2048]·[2048×8]', M: 288, N: 8, K: 2048, transA: true, transB: false },
];

export function operandShapes(c: MatmulCase): { a: number[]; b: number[] } {
  return { a: c.transA ? [c.K, c.M] : [c.M, c.K], b: c.transB ? [c.N, c.K] : [c.K, c.N] };
}

export function gflops(c: MatmulCase, ms: number): number {
  return (2 * c.M * c.N * c.K) / (ms * 1e6);
}

export function randomOperand(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648 - 0.5;
  });
}

/**
 * Times `runBatch(iters)`, which must submit `iters` products and wait for a readback of the
 * last: warm-up (compiles pipelines), then picks `iters` so one run takes ≥ ~100 ms, and
 * returns the median over `reps` runs of wall time per product, in ms.
 */
export async function medianMs(
  runBatch: (iters: number) => Promise<void>,
  reps: number,
): Promise<number> {
  await runBatch(1);
  const t0 = performance.now();
  await runBatch(1);
  const single = performance.now() - t0;
  const iters = Math.max(1, Math.min(64, Math.ceil(100 / Math.max(single, 0.01))));
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const start = performance.now();
    await runBatch(iters);
    times.push((performance.now() - start) / iters);
  }
  times.sort((x, y) => x - y);
  return times[Math.floor(times.length / 2)];
}

/** Median ms per product for our kernel: `iters` products in one batch, one readback. */
export async function timeOurMatmul(gpu: Gpu, c: MatmulCase, reps: number): Promise<number> {
  const shapes = operandShapes(c);
  const a = uploadTensor(gpu, randomOperand(c.M * c.K, 1), shapes.a, 'f32');
  const b = uploadTensor(gpu, randomOperand(c.K * c.N, 2), shapes.b, 'f32');
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
