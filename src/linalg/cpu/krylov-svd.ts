// Truncated SVD by a randomized block Krylov method (block Lanczos on A·Aᵀ with full
// reorthogonalisation; Musco & Musco 2015) that runs until the rank-k truncation stops moving.
// The host side shared with the GPU version (krylov-svd.ts): the projected matrix T = QᵀA·AᵀQ,
// grown one column block per step, and the convergence test on its Ritz vectors; then the f64
// CPU reference of the whole algorithm, drawing the GPU's Ω.
import { gaussian } from '../random.ts';
import { columns, identity, mat, multiply, transpose, type Mat } from './dense.ts';
import { householderQr } from './qr.ts';
import { jacobiSvd, type Svd } from './svd.ts';
import { symmetricEigen } from './symmetric-eigen.ts';

export interface KrylovSvdOptions {
  /** Triplets to return. */
  rank: number;
  /** Columns per block beyond the rank (default 10): wider blocks converge in fewer steps. */
  oversample?: number;
  seed?: number;
  /**
   * Stop once the rank-k truncation U·Σ·Vᵀ is estimated to lie within this relative Frobenius
   * distance of where the iteration converges (default 1e-5).
   */
  tolerance?: number;
  /**
   * Most basis columns before stopping unconverged (default 256, or three blocks where that is
   * more: the convergence test needs three).
   */
  maxBasis?: number;
  /** A short side up to this is taken whole, exactly (default 128; 0 always grows a basis). */
  wholeSide?: number;
}

/**
 * wholeSide: a short side up to 128 is taken whole (Q = I: T = A·Aᵀ in one product, exact).
 * Flat spectra grow the basis to ~100 columns anyway: for a DARE merge of Qwen2.5's 128×896
 * v_proj at rank 6, the one product took 40 % of the time of 6–8 grown blocks on SwiftShader.
 */
export const KRYLOV_DEFAULTS = { oversample: 10, tolerance: 1e-5, maxBasis: 256, wholeSide: 128 };

/** The validated sizes of a run: block width b and the largest basis. */
export function krylovPlan(m: number, n: number, options: KrylovSvdOptions) {
  const { rank } = options;
  const side = Math.min(m, n);
  if (!(Number.isInteger(rank) && rank >= 1 && rank <= side))
    throw new RangeError(`krylovSvd: rank must be 1…${side}, got ${rank}`);
  const oversample = options.oversample ?? KRYLOV_DEFAULTS.oversample;
  const block = Math.min(rank + oversample, side);
  return {
    rank,
    block,
    side,
    maxBasis: Math.max(block, options.maxBasis ?? Math.max(KRYLOV_DEFAULTS.maxBasis, 3 * block)),
    tolerance: options.tolerance ?? KRYLOV_DEFAULTS.tolerance,
    whole: side <= (options.wholeSide ?? KRYLOV_DEFAULTS.wholeSide),
    seed: options.seed ?? 0,
  };
}

/**
 * Most columns of the next block: a full block, the rest of the space when less is left (the
 * basis then spans all of A's range and the truncation is exact), or 0 to stop at `maxBasis`.
 */
export function nextBlockWidth(basis: number, plan: ReturnType<typeof krylovPlan>): number {
  const width = Math.min(plan.block, plan.side - basis);
  return basis + width > plan.maxBasis ? 0 : width;
}

/**
 * M with Mᵀ·G·M = I, for a Gram matrix G = XᵀX: X·M has orthonormal columns spanning X's range.
 * G = V·Λ·Vᵀ and M = V·Λ^(−1/2), over λ > 1e-12·λ_max: below, a direction is rounding, and it
 * is dropped rather than divided by ~0 (no columns when X is 0).
 */
export function whitening(g: Mat): Mat {
  const { values, vectors } = symmetricEigen(g);
  let kept = 0;
  while (kept < values.length && values[kept] > 1e-12 * values[0]) kept++;
  return scaledColumns(vectors, values, kept);
}

/** The first `count` columns of `vectors`, column j divided by √values[j]. */
function scaledColumns(vectors: Mat, values: Float64Array, count: number): Mat {
  const m = columns(vectors, 0, count);
  for (let i = 0; i < m.rows; i++)
    for (let j = 0; j < count; j++) m.data[i * count + j] /= Math.sqrt(values[j]);
  return m;
}

/**
 * The new directions of F outside span(Q), given F's Gram matrix G = FᵀF and C = Qᵀ·F: M such
 * that (F − Q·C)·M has orthonormal columns, with at most `limit` of them, each a direction of
 * which at least half (in ‖·‖²) lies outside span(Q). The Gram matrix of F − Q·C is G − CᵀC;
 * in F's whitened coordinates (W = whitening(G)) its eigenvalues μ are those fractions, and
 * M = W·V·diag(μ)^(−1/2) over the kept ones. A direction mostly inside span(Q) is rounding left
 * over where Krylov vectors became dependent (A rank-deficient, or converged directions):
 * normalising it would blow its components along Q up and break the basis' orthogonality, so it
 * is dropped (M may have no columns: span(Q) then holds an invariant subspace).
 */
export function newDirections(g: Mat, c: Mat, limit: number): Mat {
  const w = whitening(g);
  const outside = multiply(transpose(c), c);
  for (let i = 0; i < outside.data.length; i++) outside.data[i] = g.data[i] - outside.data[i];
  const { values, vectors } = symmetricEigen(multiply(transpose(w), multiply(outside, w)));
  let kept = 0;
  while (kept < Math.min(limit, values.length) && values[kept] >= 0.5) kept++;
  return multiply(w, scaledColumns(vectors, values, kept));
}

/**
 * T = QᵀA·AᵀQ for the orthonormal basis Q = [Q₀ | Q₁ | …] of a block Krylov space, assembled
 * from the coefficients Qᵀ·(A·Aᵀ·Qⱼ) that orthogonalising each new block computes anyway, and
 * the test that stops the iteration. Its eigenvectors Y give the Ritz vectors Q·Y, the best
 * approximations of A's left singular vectors within span(Q).
 *
 * The test compares the rank-k truncations Pⱼ·A of successive steps (Pⱼ the projector on the
 * top k Ritz vectors): ‖(Pⱼ − Pⱼ₊₁)·A‖_F is computed exactly from T, in O(s²k). Krylov
 * iterations converge geometrically, so with the ratio ρ of successive changes the distance left
 * is about change·ρ/(1 − ρ); the run stops when that is below the tolerance (relative to
 * ‖Pⱼ·A‖_F), or when the change itself is ten times below it (it has reached rounding).
 */
export class KrylovProjection {
  private t = mat(0, 0);
  private eigenvectors = mat(0, 0);
  private previous: Mat | null = null;
  private previousChange: number | null = null;

  constructor(
    private readonly rank: number,
    private readonly tolerance: number,
  ) {}

  /**
   * Adds T's column block of the newest basis block Qⱼ: c = Qᵀ·(A·Aᵀ·Qⱼ) over the whole basis
   * (Qⱼ included, so c has `size` + its width rows). Returns whether the truncation converged.
   */
  extend(c: Mat): boolean {
    const s = c.rows;
    const from = this.t.rows;
    if (from + c.cols !== s)
      throw new Error(`KrylovProjection: a ${c.rows}×${c.cols} block after ${from} columns`);
    const t = mat(s, s);
    for (let i = 0; i < from; i++)
      t.data.set(this.t.data.subarray(i * from, (i + 1) * from), i * s);
    for (let i = 0; i < s; i++)
      for (let j = 0; j < c.cols; j++) {
        const value = c.data[i * c.cols + j];
        const col = from + j;
        if (i < from) {
          t.data[i * s + col] = value;
          t.data[col * s + i] = value;
        } else if (i <= col) {
          // The diagonal block is computed twice over (both triangles): average them.
          const mean = i === col ? value : (value + c.data[col * c.cols + (i - from)]) / 2;
          t.data[i * s + col] = mean;
          t.data[col * s + i] = mean;
        }
      }
    this.t = t;
    const { values, vectors } = symmetricEigen(t);
    this.eigenvectors = vectors;
    const k = Math.min(this.rank, s);
    const top = columns(vectors, 0, k);
    const kept = values.slice(0, k).reduce((sum, v) => sum + Math.max(v, 0), 0);
    if (kept === 0) return true; // A = 0 on this basis: nothing to find.
    const before = this.previous;
    this.previous = top;
    if (!before) return false;
    const change = Math.sqrt(Math.max(0, truncationChange(t, before, top)) / kept);
    const earlier = this.previousChange;
    this.previousChange = change;
    if (change <= this.tolerance / 10) return true;
    if (earlier === null || change >= earlier) return false;
    const ratio = change / earlier;
    return (change * ratio) / (1 - ratio) <= this.tolerance;
  }

  /** The leading `count` eigenvectors of T (size × count). */
  ritzVectors(count: number): Mat {
    return columns(this.eigenvectors, 0, Math.min(count, this.t.rows));
  }
}

/**
 * ‖(P − P′)·A‖²_F for projectors P = Q·Y·YᵀQᵀ and P′ = Q·Y′·Y′ᵀQᵀ: with M = [Y | Y′] and
 * S = diag(I, −I), P − P′ = Q·M·S·MᵀQᵀ, so the square is tr(S·MᵀTM·S·MᵀM). `before` has the
 * rows of an earlier, smaller basis (zeros below).
 */
function truncationChange(t: Mat, before: Mat, after: Mat): number {
  const s = t.rows;
  const k1 = before.cols;
  const m = mat(s, k1 + after.cols);
  for (let i = 0; i < s; i++) {
    if (i < before.rows) m.data.set(before.data.subarray(i * k1, (i + 1) * k1), i * m.cols);
    m.data.set(after.data.subarray(i * after.cols, (i + 1) * after.cols), i * m.cols + k1);
  }
  const mt = transpose(m);
  const gram = multiply(mt, m);
  const projected = multiply(mt, multiply(t, m));
  const sign = (i: number) => (i < k1 ? 1 : -1);
  let total = 0;
  for (let i = 0; i < m.cols; i++)
    for (let j = 0; j < m.cols; j++)
      total += sign(i) * projected.data[i * m.cols + j] * sign(j) * gram.data[j * m.cols + i];
  return total;
}

// The loop keeps vectors as contiguous rows (Qᵀ, Wᵀ, Zᵀ): its dot products and updates then
// run along m or n, not along a block's few columns.

function rowOf(t: Mat, i: number): Float64Array {
  return t.data.subarray(i * t.cols, (i + 1) * t.cols);
}

/** For rows Qᵀ and Xᵀ: the rows of (X − Q·Qᵀ·X)ᵀ, and the coefficients Qᵀ·X. */
function orthogonalize(basisRows: Mat, xRows: Mat): { rest: Mat; coefficients: Mat } {
  const s = basisRows.rows;
  const width = xRows.rows;
  const rest = mat(width, xRows.cols, xRows.data);
  const coefficients = mat(s, width);
  for (let j = 0; j < width; j++) {
    const x = rowOf(rest, j);
    for (let i = 0; i < s; i++) {
      const q = rowOf(basisRows, i);
      let dot = 0;
      for (let r = 0; r < x.length; r++) dot += q[r] * x[r];
      coefficients.data[i * width + j] = dot;
    }
    for (let i = 0; i < s; i++) {
      const q = rowOf(basisRows, i);
      const c = coefficients.data[i * width + j];
      for (let r = 0; r < x.length; r++) x[r] -= c * q[r];
    }
  }
  return { rest, coefficients };
}

function below(a: Mat, b: Mat): Mat {
  const out = mat(a.rows + b.rows, b.cols);
  out.data.set(a.data);
  out.data.set(b.data, a.data.length);
  return out;
}

/** X·Xᵀ for rows X. */
function rowGram(x: Mat): Mat {
  return multiply(x, transpose(x));
}

/**
 * Block Krylov truncated SVD in f64: the CPU reference of krylov-svd.ts's krylovSvd, the same
 * steps with the same Ω. Q₀ = qr(A·Ω); each step Z = A·Wⱼ with Wⱼ = Aᵀ·Qⱼ gives T's next
 * column block Qᵀ·Z; its part outside span(Q), whitened, then projected out of span(Q) once
 * more, gives the next block (newDirections). Then A ≈ Ũ·ŨᵀA on the top `block` Ritz vectors
 * Ũ = Q·Y.
 */
export function krylovSvdCpu(a: Mat, options: KrylovSvdOptions): Svd {
  const { rows: m, cols: n } = a;
  const plan = krylovPlan(m, n, options);
  if (plan.whole) {
    if (m <= n) return wholeSideSvdCpu(a, plan);
    const t = wholeSideSvdCpu(transpose(a), plan);
    return { u: t.v, s: t.s, v: t.u };
  }
  const at = transpose(a);
  const omega = mat(n, plan.block, gaussian(n * plan.block, plan.seed));
  let last = transpose(householderQr(multiply(a, omega)).q);
  let basisRows = last;
  // W = Aᵀ·Q, the products with A each step makes anyway, kept for the last one.
  let imageRows = mat(0, n);
  const projection = new KrylovProjection(plan.rank, plan.tolerance);
  for (;;) {
    // A on the left: multiply skips its zeros, and merged ΔW are mostly zeros.
    const w = multiply(at, transpose(last));
    imageRows = below(imageRows, transpose(w));
    const z = orthogonalize(basisRows, transpose(multiply(a, w)));
    const converged = projection.extend(z.coefficients);
    const width = nextBlockWidth(basisRows.rows, plan);
    if (converged || width === 0) break;
    const f = multiply(transpose(whitening(rowGram(z.rest))), z.rest);
    const fresh = orthogonalize(basisRows, f);
    const directions = newDirections(rowGram(f), fresh.coefficients, width);
    if (directions.cols === 0) break;
    last = multiply(transpose(directions), fresh.rest);
    basisRows = below(basisRows, last);
  }
  return rayleighRitzCpu(basisRows, imageRows, projection.ritzVectors(plan.block), plan.rank);
}

/** krylov-svd.ts's wholeSideSvd: Q = I for a short side m ≤ n, T = A·Aᵀ. */
function wholeSideSvdCpu(a: Mat, plan: ReturnType<typeof krylovPlan>): Svd {
  const projection = new KrylovProjection(plan.rank, plan.tolerance);
  projection.extend(multiply(a, transpose(a)));
  return rayleighRitzCpu(identity(a.rows), a, projection.ritzVectors(plan.block), plan.rank);
}

/** A ≈ Ũ·ŨᵀA on Ũ = Q·Y: Aᵀ·Ũ = W·Y = Q_b·R_b, R_b = X·Σ·Zᵀ, so A ≈ (Ũ·Z)·Σ·(Q_b·X)ᵀ. */
function rayleighRitzCpu(basisRows: Mat, imageRows: Mat, y: Mat, rank: number): Svd {
  const leading = multiply(transpose(basisRows), y);
  const { q: qb, r: rb } = householderQr(multiply(transpose(imageRows), y));
  const core = jacobiSvd(rb);
  return {
    u: multiply(leading, columns(core.v, 0, rank)),
    s: core.s.slice(0, rank),
    v: multiply(qb, columns(core.u, 0, rank)),
  };
}
