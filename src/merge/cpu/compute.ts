// The merge steps of compute.ts on the CPU references (f64 QR and SVD, cpu/entrywise.ts): what
// merging and comparing run on where WebGPU is missing. Slower, never less exact: products and
// sums are in f64, and the random draws (DARE's masks, the truncated SVD's Ω) are the GPU's.
// Each step first lets the event loop turn, so a worker hears a cancel between modules.
import { mat, productRow } from '../../linalg/cpu/dense.ts';
import { krylovSvdCpu } from '../../linalg/cpu/krylov-svd.ts';
import { nextTurn } from '../../linalg/cpu/turns.ts';
import { jacobiSvd, lowRankProductSvdCpu, type Svd } from '../../linalg/cpu/svd.ts';
import { DENSE_SVD, denseRank, type MergeCompute } from '../compute.ts';
import {
  chooseRank,
  energy,
  factorsOf,
  type HostSvd,
  type LowRank,
  type Truncated,
} from '../low-rank.ts';
import type { OutputRank } from '../spec.ts';
import { mergeEntrywiseCpu } from './entrywise.ts';

function hostSvd({ u, s, v }: Svd): HostSvd {
  return { u: Float32Array.from(u.data), s, v: Float32Array.from(v.data) };
}

/** Rows [from, to) of B·A, f64 sums rounded once to f32 (what the GPU's f32 matmul approximates). */
function productRows(x: LowRank, from: number, to: number): Float32Array {
  const rows = new Float32Array((to - from) * x.in);
  const row = new Float64Array(x.in);
  for (let o = from; o < to; o++) {
    productRow(x, 1, o, row);
    rows.set(row, (o - from) * x.in);
  }
  return rows;
}

/** A dense out×in matrix factored to the rule's rank by its truncated SVD. */
function truncated(
  values: ArrayLike<number>,
  out: number,
  width: number,
  rule: OutputRank,
  cap: number,
  seed: number,
): Truncated {
  let total = 0;
  for (let i = 0; i < values.length; i++) total += values[i] * values[i];
  const rank = denseRank(rule, cap, out, width);
  const svd = hostSvd(krylovSvdCpu(mat(out, width, values), { rank, ...DENSE_SVD, seed }));
  const k = chooseRank(svd.s, rule, total);
  return { factors: factorsOf(svd, k, out, width), kept: energy(svd.s, k), total };
}

export const cpuCompute: MergeCompute = {
  where: 'cpu',
  async productSvd(x) {
    await nextTurn();
    const svd =
      x.rank <= Math.min(x.out, x.in)
        ? lowRankProductSvdCpu(mat(x.out, x.rank, x.b), mat(x.rank, x.in, x.a))
        : jacobiSvd(mat(x.out, x.in, productRows(x, 0, x.out)));
    return hostSvd(svd);
  },
  async mergeArrays(parts, tasks, consensus, rowLength) {
    await nextTurn();
    const merged = mergeEntrywiseCpu(
      parts.map((x, i) => ({ x, task: tasks[i] })),
      consensus,
      rowLength,
    );
    return Float32Array.from(merged);
  },
  async mergeDense(job) {
    await nextTurn();
    const zero = new Float32Array(job.out * job.in);
    const merged = mergeEntrywiseCpu(
      job.parts.map((p, i) => ({
        x: p ? productRows(p, 0, job.out) : zero,
        task: job.tasks[i],
      })),
      job.consensus,
      job.in,
    );
    return truncated(merged, job.out, job.in, job.rule, job.cap, job.seed);
  },
  async truncateDense(values, shape, rule, cap, seed) {
    await nextTurn();
    return truncated(values, shape.out, shape.in, rule, cap, seed);
  },
  async denseRows(parts, from, to) {
    await nextTurn();
    return parts.map((p) => (p ? productRows(p, from, to) : null));
  },
};
