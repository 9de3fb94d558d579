import { gaussian } from '../random.ts';
import { columns, mat, multiply, transpose, type Mat } from './dense.ts';
import { householderQr } from './qr.ts';

export interface Svd {
  /** m×p, orthonormal columns (p = min(m, n)). */
  u: Mat;
  /** p singular values, descending. */
  s: Float64Array;
  /** n×p, orthonormal columns. */
  v: Mat;
}

export interface RandomizedSvdOptions {
  /** Triplets to return. */
  rank: number;
  /** Extra columns in the range finder (Halko et al. use 5–10); 0 matches torch.svd_lowrank(A, q=rank). */
  oversample?: number;
  /** Power iterations, each re-orthonormalised by QR (torch's default is 2). */
  niter?: number;
  seed?: number;
}

const MAX_SWEEPS = 60;

/**
 * Exact SVD in f64 by one-sided Jacobi (Hestenes): rotate pairs of columns of A until all
 * are orthogonal; then σᵢ = ‖column i‖, U = columns / σ, V = accumulated rotations. Chosen
 * as the reference because it attains high relative accuracy, including for small σ.
 * Columns are kept as contiguous rows of Aᵀ: strided column access made it ~5× slower.
 */
export function jacobiSvd(a: Mat): Svd {
  if (a.rows < a.cols) {
    const t = jacobiSvd(transpose(a));
    return { u: t.v, s: t.s, v: t.u };
  }
  const { rows: m, cols: n } = a;
  // cols[j] is column j of A, vt[j] row j of Vᵀ (column j of V); both rotate together.
  const at = transpose(a);
  const cols = Array.from({ length: n }, (_, j) => at.data.subarray(j * m, (j + 1) * m));
  const vt = Array.from({ length: n }, (_, j) => {
    const row = new Float64Array(n);
    row[j] = 1;
    return row;
  });
  const norms = cols.map((c) => dot(c, c));
  for (let sweep = 0; sweep < MAX_SWEEPS; sweep++) {
    let rotated = false;
    for (let i = 0; i < n - 1; i++) {
      for (let j = i + 1; j < n; j++) {
        const gamma = dot(cols[i], cols[j]);
        if (gamma === 0 || Math.abs(gamma) <= 1e-15 * Math.sqrt(norms[i] * norms[j])) continue;
        rotated = true;
        const [c, s] = jacobiRotation(norms[i], norms[j], gamma);
        rotate(cols[i], cols[j], c, s);
        rotate(vt[i], vt[j], c, s);
        // Recomputed rather than updated: updates drift when a column shrinks towards 0.
        norms[i] = dot(cols[i], cols[i]);
        norms[j] = dot(cols[j], cols[j]);
      }
    }
    if (!rotated) break;
  }
  const sigma = norms.map(Math.sqrt);
  const order = sigma.map((_, j) => j).sort((x, y) => sigma[y] - sigma[x]);
  const u = mat(m, n);
  const v = mat(n, n);
  const s = new Float64Array(n);
  order.forEach((j, k) => {
    s[k] = sigma[j];
    for (let r = 0; r < m; r++) u.data[r * n + k] = sigma[j] > 0 ? cols[j][r] / sigma[j] : 0;
    for (let r = 0; r < n; r++) v.data[r * n + k] = vt[j][r];
  });
  return { u, s, v };
}

function dot(x: Float64Array, y: Float64Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * y[i];
  return s;
}

/** x ← c·x − s·y, y ← s·x + c·y */
function rotate(x: Float64Array, y: Float64Array, c: number, s: number): void {
  for (let i = 0; i < x.length; i++) {
    const xi = x[i];
    const yi = y[i];
    x[i] = c * xi - s * yi;
    y[i] = s * xi + c * yi;
  }
}

/**
 * The rotation (c, s) that makes columns with Gram entries α = ‖x‖², β = ‖y‖², γ = x·y
 * orthogonal: x' = c·x − s·y, y' = s·x + c·y (Rutishauser's formulas; |angle| ≤ π/4).
 */
export function jacobiRotation(alpha: number, beta: number, gamma: number): [number, number] {
  const zeta = (beta - alpha) / (2 * gamma);
  const t = Math.sign(zeta || 1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
  const c = 1 / Math.sqrt(1 + t * t);
  return [c, c * t];
}

/** The first `k` triplets of an SVD. */
function leading({ u, s, v }: Svd, k: number): Svd {
  return { u: columns(u, 0, k), s: s.slice(0, k), v: columns(v, 0, k) };
}

/**
 * SVD of the product B·A (B m×R, A R×n, R ≤ m, n) without forming it, in f64: the CPU
 * reference of svd.ts's lowRankProductSvd. B = Q_b·R_b and Aᵀ = Q_a·R_a by Householder, the
 * R×R core R_b·R_aᵀ = X·Σ·Yᵀ by Jacobi, so B·A = (Q_b·X)·Σ·(Q_a·Y)ᵀ. Keeps `rank` triplets.
 */
export function lowRankProductSvdCpu(b: Mat, a: Mat, rank = b.cols): Svd {
  if (b.cols !== a.rows)
    throw new Error(`lowRankProductSvdCpu: B ${b.rows}×${b.cols}, A ${a.rows}×${a.cols}`);
  const qb = householderQr(b);
  const qa = householderQr(transpose(a));
  const core = leading(jacobiSvd(multiply(qb.r, transpose(qa.r))), rank);
  return { u: multiply(qb.q, core.u), s: core.s, v: multiply(qa.q, core.v) };
}

/**
 * Randomized truncated SVD in f64 (Halko, Martinsson & Tropp 2011): the CPU reference of
 * svd.ts's randomizedSvd, drawing the same Gaussian Ω from the same seed, so both find the same
 * subspace. Y = A·Ω, Q = qr(Y); `niter` times Q = qr(A·qr(Aᵀ·Q)); then Aᵀ·Q = Q_b·R_b and
 * R_b = X·Σ·Yᵀ give A ≈ (Q·Y)·Σ·(Q_b·X)ᵀ.
 */
export function randomizedSvdCpu(
  a: Mat,
  { rank, oversample = 0, niter = 2, seed = 0 }: RandomizedSvdOptions,
): Svd {
  const { rows: m, cols: n } = a;
  if (!(Number.isInteger(rank) && rank >= 1 && rank <= Math.min(m, n)))
    throw new RangeError(`randomizedSvdCpu: rank must be 1…${Math.min(m, n)}, got ${rank}`);
  const q = Math.min(rank + oversample, m, n);
  const at = transpose(a);
  let basis = householderQr(multiply(a, mat(n, q, gaussian(n * q, seed)))).q;
  for (let i = 0; i < niter; i++) {
    const z = householderQr(multiply(at, basis)).q;
    basis = householderQr(multiply(a, z)).q;
  }
  const { q: qb, r: rb } = householderQr(multiply(at, basis));
  const core = leading(jacobiSvd(rb), rank);
  return { u: multiply(basis, core.v), s: core.s, v: multiply(qb, core.u) };
}
