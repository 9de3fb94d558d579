// Where the heavy steps of merging and comparing adapters run. Everything else in src/merge
// works on host factors (LowRank) and does not care: the GPU implementation here keeps dense
// matrices on the device between steps; cpu/compute.ts runs the same steps on the CPU
// references where WebGPU is missing.
import type { Gpu } from '../gpu/device.ts';
import { run } from '../gpu/dispatch.ts';
import { readF32 } from '../gpu/readback.ts';
import { releaseTensor, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import { unary } from '../linalg/elementwise.ts';
import { matmul } from '../linalg/matmul.ts';
import { reduceAll } from '../linalg/reduce.ts';
import { krylovSvd } from '../linalg/krylov-svd.ts';
import { exactSvd, lowRankProductSvd, type SvdResult } from '../linalg/svd.ts';
import { mergeEntrywise, type Consensus, type EntrywiseTask } from './entrywise.ts';
import {
  chooseRank,
  energy,
  factorsOf,
  type HostSvd,
  type LowRank,
  type Truncated,
} from './low-rank.ts';
import type { OutputRank } from './spec.ts';

/** One dense merge: the tasks' ΔW (factors, null for a module a source lacks) and the plan. */
export interface DenseMerge {
  out: number;
  in: number;
  parts: readonly (LowRank | null)[];
  tasks: readonly EntrywiseTask[];
  consensus: Consensus;
  /** The output rank rule, and the most triplets the merged ΔW can need. */
  rule: OutputRank;
  cap: number;
  /** Seed of the truncated SVD (its random start) that brings the result back to factors. */
  seed: number;
}

export interface MergeCompute {
  /** Where it runs, for messages. */
  readonly where: 'gpu' | 'cpu';
  /** The SVD of B·A, every triplet, σ descending. */
  productSvd(x: LowRank): Promise<HostSvd>;
  /** Same-shaped arrays (one per task, `rowLength` wide) merged entrywise into one. */
  mergeArrays(
    parts: readonly Float32Array[],
    tasks: readonly EntrywiseTask[],
    consensus: Consensus,
    rowLength: number,
  ): Promise<Float32Array>;
  /** The dense ΔW of the tasks merged entrywise, then factored to the rule's rank. */
  mergeDense(job: DenseMerge): Promise<Truncated>;
  /**
   * A dense out×in matrix factored to the rule's rank (at most `cap`) by its truncated SVD (its
   * random start from `seed`): what LoRA extraction makes of W_tuned − W_base.
   */
  truncateDense(
    values: Float32Array,
    shape: { out: number; in: number },
    rule: OutputRank,
    cap: number,
    seed: number,
  ): Promise<Truncated>;
  /** Rows [from, to) of each ΔW = B·A (null stays null). */
  denseRows(
    parts: readonly (LowRank | null)[],
    from: number,
    to: number,
  ): Promise<(Float32Array | null)[]>;
}

/**
 * Truncated SVD of a dense merge result (krylovSvd): run until the rank-k truncation is estimated
 * within 3e-5 of where it converges, the exact truncation PEFT's full SVD gives (measured within
 * 2.2e-5 of it on the fixture merges). Entrywise merges have flat spectra, where a fixed number
 * of power iterations stops far from it (up to 1e-1).
 */
export const DENSE_SVD = { oversample: 10, tolerance: 3e-5 };

/** The rank a dense result is computed at: the rule's, within the cap and the matrix. */
export function denseRank(rule: OutputRank, cap: number, out: number, width: number): number {
  return Math.min(typeof rule === 'number' ? rule : (rule.max ?? cap), out, width);
}

/** [K, …shape] from host arrays. */
function uploadStack(gpu: Gpu, parts: readonly Float32Array[], shape: number[], label: string) {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(parts.length * n);
  parts.forEach((p, i) => {
    data.set(p, i * n);
  });
  return uploadTensor(gpu, data, [parts.length, ...shape], 'f32', label);
}

/** Factors zero-padded to one rank (a missing part is all zeros): exact for the product. */
function paddedFactors(
  parts: readonly (LowRank | null)[],
  out: number,
  width: number,
): { rank: number; bs: Float32Array[]; as: Float32Array[] } {
  const rank = Math.max(1, ...parts.map((p) => p?.rank ?? 0));
  const bs = parts.map((p) => {
    const b = new Float32Array(out * rank);
    if (p)
      for (let o = 0; o < out; o++) b.set(p.b.subarray(o * p.rank, (o + 1) * p.rank), o * rank);
    return b;
  });
  const as = parts.map((p) => {
    const a = new Float32Array(rank * width);
    if (p) a.set(p.a);
    return a;
  });
  return { rank, bs, as };
}

async function readSvd(gpu: Gpu, svd: SvdResult): Promise<HostSvd> {
  try {
    return { u: await readF32(gpu, svd.u), s: svd.s, v: await readF32(gpu, svd.v) };
  } finally {
    releaseTensor(gpu, svd.u, svd.v);
  }
}

async function squaredNorm(gpu: Gpu, t: Tensor): Promise<number> {
  const [squares, sum] = await run(gpu, (b) => {
    const sq = unary(b, 'square', t);
    return [sq, reduceAll(b, 'sum', sq)];
  });
  try {
    return (await readF32(gpu, sum))[0];
  } finally {
    releaseTensor(gpu, squares, sum);
  }
}

/** B·A on the GPU (out×in); the caller owns it. */
async function denseProduct(gpu: Gpu, x: LowRank): Promise<Tensor> {
  const b = uploadTensor(gpu, x.b, [x.out, x.rank], 'f32', 'merge B');
  const a = uploadTensor(gpu, x.a, [x.rank, x.in], 'f32', 'merge A');
  try {
    return await run(gpu, (batch) => matmul(batch, b, a));
  } finally {
    releaseTensor(gpu, a, b);
  }
}

/** The stacked dense ΔW of every part, [K, out, in], by one batched matmul; the caller owns it. */
async function denseStack(
  gpu: Gpu,
  parts: readonly (LowRank | null)[],
  out: number,
  width: number,
): Promise<Tensor> {
  const { rank, bs, as } = paddedFactors(parts, out, width);
  const b = uploadStack(gpu, bs, [out, rank], 'merge B');
  const a = uploadStack(gpu, as, [rank, width], 'merge A');
  try {
    return await run(gpu, (batch) => matmul(batch, b, a));
  } finally {
    releaseTensor(gpu, a, b);
  }
}

/** A dense [out, in] matrix on the GPU factored to the rule's rank by its truncated SVD. */
async function truncated(
  gpu: Gpu,
  dense: Tensor,
  rule: OutputRank,
  cap: number,
  seed: number,
): Promise<Truncated> {
  const [out, width] = dense.shape;
  const total = await squaredNorm(gpu, dense);
  const rank = denseRank(rule, cap, out, width);
  const svd = await readSvd(gpu, await krylovSvd(gpu, dense, { rank, ...DENSE_SVD, seed }));
  const k = chooseRank(svd.s, rule, total);
  return { factors: factorsOf(svd, k, out, width), kept: energy(svd.s, k), total };
}

/** The merge steps on the GPU: dense matrices stay on the device between them. */
export function gpuCompute(gpu: Gpu): MergeCompute {
  return {
    where: 'gpu',
    async productSvd(x) {
      if (x.rank <= Math.min(x.out, x.in)) {
        const b = uploadTensor(gpu, x.b, [x.out, x.rank], 'f32', 'merge B');
        const a = uploadTensor(gpu, x.a, [x.rank, x.in], 'f32', 'merge A');
        try {
          return await readSvd(gpu, await lowRankProductSvd(gpu, b, a));
        } finally {
          releaseTensor(gpu, a, b);
        }
      }
      // More stacked rank than a side (tiny models): the dense product is small.
      const dense = await denseProduct(gpu, x);
      try {
        return await readSvd(gpu, await exactSvd(gpu, dense));
      } finally {
        releaseTensor(gpu, dense);
      }
    },
    async mergeArrays(parts, tasks, consensus, rowLength) {
      const stacked = uploadStack(gpu, parts, [parts[0].length], 'merge tasks');
      try {
        const merged = await mergeEntrywise(gpu, stacked, tasks, consensus, rowLength);
        try {
          return await readF32(gpu, merged);
        } finally {
          releaseTensor(gpu, merged);
        }
      } finally {
        releaseTensor(gpu, stacked);
      }
    },
    async mergeDense(job) {
      const stacked = await denseStack(gpu, job.parts, job.out, job.in);
      let merged: Tensor;
      try {
        merged = await mergeEntrywise(gpu, stacked, job.tasks, job.consensus, job.in);
      } finally {
        releaseTensor(gpu, stacked);
      }
      try {
        return await truncated(gpu, merged, job.rule, job.cap, job.seed);
      } finally {
        releaseTensor(gpu, merged);
      }
    },
    async truncateDense(values, shape, rule, cap, seed) {
      const dense = uploadTensor(gpu, values, [shape.out, shape.in], 'f32', 'dense ΔW');
      try {
        return await truncated(gpu, dense, rule, cap, seed);
      } finally {
        releaseTensor(gpu, dense);
      }
    },
    async denseRows(parts, from, to) {
      const products = await run(gpu, (batch) =>
        parts.map((p) => {
          if (!p) return null;
          const rows = batch.temporary([to - from, p.rank], 'f32', 'ΔW rows of B');
          gpu.device.queue.writeBuffer(rows.buffer, 0, p.b.subarray(from * p.rank, to * p.rank));
          const a = batch.temporary([p.rank, p.in], 'f32', 'ΔW A');
          gpu.device.queue.writeBuffer(a.buffer, 0, p.a);
          return matmul(batch, rows, a);
        }),
      );
      try {
        const read: (Float32Array | null)[] = [];
        for (const p of products) read.push(p ? await readF32(gpu, p) : null);
        return read;
      } finally {
        releaseTensor(gpu, ...products.filter((p) => p !== null));
      }
    },
  };
}
