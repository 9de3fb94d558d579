// OPCM (Tang et al. 2025, "Merging Models on the Fly Without Retraining: A Sequential Approach
// to Scalable Continual Model Merging"): adapters are merged one at a time. Each new task vector
// τ is expressed in the singular bases (U, V) of the merge so far; its components on the merge's
// own directions (the diagonal uᵢᵀτvᵢ) and on the block of the leading directions holding the
// `opcmAlpha` share of Σσ are removed, the rest added. At the end the merge is rescaled to the
// mean norm of the task vectors (norms over the whole adapter), as the paper's λ does.
// Everything stays low-rank: the removed part is U_p·M·V_pᵀ with M a p×p masked core, so
// τ − removal = [B | −U_p·M]·[A ; V_pᵀ]; the sum is re-factored after each step.
import type { MergeCompute } from './compute.ts';
import { factorsOf, frobeniusInner, scaled, stack, weighted, type LowRank } from './low-rank.ts';
import type { ModuleJob } from './merge.ts';
import type { ResolvedSpec } from './spec.ts';

/** Singular values below this share of the largest are numerical zeros of the merge. */
const ZERO = 1e-6;

/** The first index where the running share of Σσ exceeds alpha (torch's argmax of the mask). */
function splitRank(sigma: Float64Array, alpha: number): number {
  const total = sigma.reduce((a, b) => a + b, 0);
  let running = 0;
  for (let i = 0; i < sigma.length; i++) {
    running += sigma[i];
    if (running / total > alpha) return i;
  }
  return 0;
}

/** τ with its components on the merge's protected directions removed, as factors. */
async function projected(
  compute: MergeCompute,
  merged: LowRank,
  task: LowRank,
  alpha: number,
): Promise<LowRank> {
  const svd = await compute.productSvd(merged);
  const r = svd.s.length;
  const p = svd.s.filter((s) => s > ZERO * svd.s[0]).length;
  if (p === 0) return task;
  const split = splitRank(svd.s.subarray(0, p), alpha);
  // C = (U_pᵀ·B)·(A·V_p), p×p, on the host: the task in the merge's singular bases.
  const utb = new Float64Array(p * task.rank);
  for (let o = 0; o < task.out; o++)
    for (let i = 0; i < p; i++) {
      const u = svd.u[o * r + i];
      for (let j = 0; j < task.rank; j++) utb[i * task.rank + j] += u * task.b[o * task.rank + j];
    }
  const av = new Float64Array(task.rank * p);
  for (let j = 0; j < task.rank; j++)
    for (let c = 0; c < task.in; c++) {
      const a = task.a[j * task.in + c];
      for (let i = 0; i < p; i++) av[j * p + i] += a * svd.v[c * r + i];
    }
  const masked = new Float64Array(p * p);
  for (let i = 0; i < p; i++)
    for (let j = 0; j < p; j++) {
      if (!(i === j || (i < split && j < split))) continue;
      for (let t = 0; t < task.rank; t++)
        masked[i * p + j] += utb[i * task.rank + t] * av[t * p + j];
    }
  // Removal = (U_p·M)·V_pᵀ, written as factors with B = −U_p·M and A = V_pᵀ.
  const removal: LowRank = {
    out: task.out,
    in: task.in,
    rank: p,
    b: new Float32Array(task.out * p),
    a: new Float32Array(p * task.in),
  };
  for (let o = 0; o < task.out; o++)
    for (let j = 0; j < p; j++) {
      let v = 0;
      for (let i = 0; i < p; i++) v += svd.u[o * r + i] * masked[i * p + j];
      removal.b[o * p + j] = -v;
    }
  for (let j = 0; j < p; j++)
    for (let c = 0; c < task.in; c++) removal.a[j * task.in + c] = svd.v[c * r + j];
  return stack([task, removal]);
}

/** The merge so far, re-factored to its numerical rank. */
async function refactored(compute: MergeCompute, x: LowRank): Promise<LowRank> {
  const svd = await compute.productSvd(x);
  const k = Math.max(1, svd.s.filter((s) => s > ZERO * svd.s[0]).length);
  return factorsOf(svd, k, x.out, x.in);
}

export async function opcmModules(
  compute: MergeCompute,
  jobs: readonly ModuleJob[],
  spec: ResolvedSpec,
  onProgress?: (done: number, total: number) => void,
): Promise<LowRank[]> {
  const taskNorms2 = new Float64Array(spec.adapters.length);
  const merged: LowRank[] = [];
  for (const job of jobs) {
    let sum: LowRank | null = null;
    for (const [i, s] of job.sources.entries()) {
      if (!s.module) continue;
      const task = weighted(s.module, s.weight);
      taskNorms2[i] += frobeniusInner(task, task);
      sum = sum
        ? await refactored(
            compute,
            stack([sum, await projected(compute, sum, task, spec.opcmAlpha)]),
          )
        : task;
    }
    merged.push(sum!);
    onProgress?.(merged.length, jobs.length);
  }
  const meanTaskNorm =
    Array.from(taskNorms2, Math.sqrt).reduce((a, b) => a + b, 0) / taskNorms2.length;
  const mergedNorm = Math.sqrt(merged.reduce((t, m) => t + frobeniusInner(m, m), 0));
  return merged.map((m) => (mergedNorm > 0 ? scaled(m, meanTaskNorm / mergedNorm) : m));
}
