// A module's ΔW held as factors, B·A with the scaling folded into B, and the operations merges
// need on it without forming m×n: stacking (exact sums), Frobenius inner products (r×r work),
// and truncation to an output rank by the SVD of the product (compute.ts runs it).
import type { AdapterModule } from '../adapters/peft-read.ts';
import type { MergeCompute } from './compute.ts';
import type { OutputRank } from './spec.ts';

/** ΔW = B·A: b is out×rank, a is rank×in, both row-major. */
export interface LowRank {
  out: number;
  in: number;
  rank: number;
  b: Float32Array;
  a: Float32Array;
}

/** B·A of an adapter module, without its scaling (the arrays are shared, not copied). */
export function unscaled(m: AdapterModule): LowRank {
  return { out: m.b.length / m.rank, in: m.a.length / m.rank, rank: m.rank, b: m.b, a: m.a };
}

/** c·s·B·A of an adapter module (s its scaling). */
export function weighted(m: AdapterModule, c: number): LowRank {
  return scaled(unscaled(m), c * m.scale);
}

/** Σ of the parts as one factor pair: [B₁ | B₂ | …]·[A₁; A₂; …], exact. */
export function stack(parts: readonly LowRank[]): LowRank {
  const { out, in: width } = parts[0];
  const rank = parts.reduce((r, p) => r + p.rank, 0);
  const b = new Float32Array(out * rank);
  const a = new Float32Array(rank * width);
  let offset = 0;
  for (const p of parts) {
    for (let o = 0; o < out; o++)
      b.set(p.b.subarray(o * p.rank, (o + 1) * p.rank), o * rank + offset);
    a.set(p.a, offset * width);
    offset += p.rank;
  }
  return { out, in: width, rank, b, a };
}

export function scaled(x: LowRank, c: number): LowRank {
  return { ...x, b: x.b.map((v) => v * c) };
}

/** ⟨B₁A₁, B₂A₂⟩_F = Σ (B₁ᵀB₂) ∘ (A₁A₂ᵀ): two r₁×r₂ products, never m×n. */
export function frobeniusInner(x: LowRank, y: LowRank): number {
  const gramB = new Float64Array(x.rank * y.rank);
  for (let o = 0; o < x.out; o++)
    for (let i = 0; i < x.rank; i++) {
      const v = x.b[o * x.rank + i];
      if (v !== 0)
        for (let j = 0; j < y.rank; j++) gramB[i * y.rank + j] += v * y.b[o * y.rank + j];
    }
  let total = 0;
  for (let i = 0; i < x.rank; i++)
    for (let j = 0; j < y.rank; j++) {
      let dot = 0;
      for (let c = 0; c < x.in; c++) dot += x.a[i * x.in + c] * y.a[j * y.in + c];
      total += gramB[i * y.rank + j] * dot;
    }
  return total;
}

/** Σσᵢ² over the first k singular values: ‖ΔW‖²_F they hold. */
export const energy = (sigma: ArrayLike<number>, k = sigma.length) =>
  Array.from(sigma)
    .slice(0, k)
    .reduce((t, s) => t + s * s, 0);

/**
 * The rank an output rule gives for singular values σ (descending): a fixed k, or the smallest
 * k whose energy reaches the asked share of `total` (‖ΔW‖²_F; by default that of σ itself).
 */
export function chooseRank(sigma: ArrayLike<number>, rule: OutputRank, total = energy(sigma)) {
  if (typeof rule === 'number') return Math.min(rule, sigma.length);
  const cap = Math.min(rule.max ?? sigma.length, sigma.length);
  let kept = 0;
  for (let k = 1; k <= cap; k++) {
    kept += sigma[k - 1] ** 2;
    if (kept >= rule.energy * total) return k;
  }
  return cap;
}

export interface Truncated {
  factors: LowRank;
  /** ‖ΔW‖²_F kept and before truncation. */
  kept: number;
  total: number;
}

/** An SVD on the host: u is out×rank, v is in×rank (row-major), s descending. */
export interface HostSvd {
  u: Float32Array;
  s: Float64Array;
  v: Float32Array;
}

/** B = U·diag(σ), A = Vᵀ for the top k triplets (PEFT's and kohya's split: clamp acts on it). */
export function factorsOf(svd: HostSvd, k: number, out: number, width: number): LowRank {
  const r = svd.s.length;
  const b = new Float32Array(out * k);
  for (let o = 0; o < out; o++)
    for (let j = 0; j < k; j++) b[o * k + j] = svd.u[o * r + j] * svd.s[j];
  const a = new Float32Array(k * width);
  for (let j = 0; j < k; j++) for (let i = 0; i < width; i++) a[j * width + i] = svd.v[i * r + j];
  return { out, in: width, rank: k, b, a };
}

/** Brings x to the rank the rule asks (never above its own), by the SVD of B·A. */
export async function truncate(
  compute: MergeCompute,
  x: LowRank,
  rule: OutputRank,
): Promise<Truncated> {
  const svd = await compute.productSvd(x);
  const k = chooseRank(svd.s, rule);
  return { factors: factorsOf(svd, k, x.out, x.in), kept: energy(svd.s, k), total: energy(svd.s) };
}

/**
 * Clamps both factors to [−h, h], h the `quantile` of all their entries (torch.quantile's
 * linear interpolation), as kohya's svd_merge and PEFT's `clamp` do.
 */
export function clampFactors(x: LowRank, quantile: number): LowRank {
  const all = Float64Array.from([...x.b, ...x.a]).sort();
  const position = quantile * (all.length - 1);
  const below = Math.floor(position);
  const above = Math.min(below + 1, all.length - 1);
  const h = all[below] + (position - below) * (all[above] - all[below]);
  const clamp = (v: number) => Math.min(h, Math.max(-h, v));
  return { ...x, b: x.b.map(clamp), a: x.a.map(clamp) };
}
