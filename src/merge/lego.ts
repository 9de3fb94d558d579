// LoRA-LEGO (Zhao et al. 2024, "Merging LoRAs like Playing LEGO"): every rank-1 unit bⱼ·aⱼᵀ of
// every adapter is a "minimal semantic unit"; k-means clusters the units of all adapters into k
// groups and each centroid becomes one rank of the merged adapter. Units are first balanced
// (‖b‖ = ‖a‖) and sign-normalised, since (c·b, a/c) and (−b, −a) are the same unit. The merge
// is rescaled to the Frobenius norm of the plain weighted sum (the paper's norm reweighting).
// With k ≥ the number of units each unit is its own cluster: the exact weighted sum.
import { seededRandom } from '../linalg/random.ts';
import { frobeniusInner, scaled, stack, weighted, type LowRank } from './low-rank.ts';
import type { ModuleJob } from './merge.ts';
import type { ResolvedSpec } from './spec.ts';

const ITERATIONS = 50;

/** The balanced, sign-normalised rank-1 units [b; a] of a factor pair. */
function units(x: LowRank): Float64Array[] {
  const result: Float64Array[] = [];
  for (let j = 0; j < x.rank; j++) {
    const b = Float64Array.from({ length: x.out }, (_, o) => x.b[o * x.rank + j]);
    const a = Float64Array.from(x.a.subarray(j * x.in, (j + 1) * x.in));
    const nb = Math.hypot(...b);
    const na = Math.hypot(...a);
    if (nb === 0 || na === 0) continue;
    let c = Math.sqrt(na / nb);
    let largest = 0;
    a.forEach((v, i) => (Math.abs(v) > Math.abs(a[largest]) ? (largest = i) : 0));
    if (a[largest] < 0) c = -c;
    const unit = new Float64Array(x.out + x.in);
    b.forEach((v, o) => (unit[o] = v * c));
    a.forEach((v, i) => (unit[x.out + i] = v / c));
    result.push(unit);
  }
  return result;
}

function distance2(x: Float64Array, y: Float64Array): number {
  let d = 0;
  for (let i = 0; i < x.length; i++) d += (x[i] - y[i]) ** 2;
  return d;
}

/** k-means++ seeding, then Lloyd's iterations until the assignment stops changing. */
export function kMeans(points: readonly Float64Array[], k: number, seed: number): Float64Array[] {
  const random = seededRandom(seed);
  const centroids = [points[Math.floor(random() * points.length)].slice()];
  while (centroids.length < k) {
    const d = points.map((p) => Math.min(...centroids.map((c) => distance2(p, c))));
    let target = random() * d.reduce((a, b) => a + b, 0);
    const next = d.findIndex((v) => (target -= v) <= 0);
    centroids.push(points[next < 0 ? points.length - 1 : next].slice());
  }
  let assignment: number[] = [];
  for (let iteration = 0; iteration < ITERATIONS; iteration++) {
    const next = points.map((p) => {
      let best = 0;
      centroids.forEach((c, i) => {
        if (distance2(p, c) < distance2(p, centroids[best])) best = i;
      });
      return best;
    });
    if (next.every((c, i) => c === assignment[i])) break;
    assignment = next;
    centroids.forEach((c, i) => {
      const members = points.filter((_, p) => assignment[p] === i);
      if (members.length === 0) return;
      c.fill(0);
      for (const m of members) m.forEach((v, j) => (c[j] += v / members.length));
    });
  }
  return centroids;
}

export function legoModule(job: ModuleJob, spec: ResolvedSpec): LowRank {
  const parts = job.sources.flatMap((s) => (s.module ? [weighted(s.module, s.weight)] : []));
  const sum = stack(parts);
  const all = parts.flatMap(units);
  const k = typeof spec.rank === 'number' ? spec.rank : Math.max(...parts.map((p) => p.rank));
  if (all.length <= k) return sum;
  const centroids = kMeans(all, k, spec.seed ^ job.salt);
  const merged: LowRank = {
    out: job.out,
    in: job.in,
    rank: k,
    b: new Float32Array(job.out * k),
    a: new Float32Array(k * job.in),
  };
  centroids.forEach((c, j) => {
    for (let o = 0; o < job.out; o++) merged.b[o * k + j] = c[o];
    merged.a.set(c.subarray(job.out), j * job.in);
  });
  const norm = Math.sqrt(frobeniusInner(merged, merged));
  const target = Math.sqrt(frobeniusInner(sum, sum));
  return norm > 0 ? scaled(merged, target / norm) : merged;
}
