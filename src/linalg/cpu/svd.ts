import { mat, transpose, type Mat } from './dense.ts';

export interface Svd {
  /** m×p, orthonormal columns (p = min(m, n)). */
  u: Mat;
  /** p singular values, descending. */
  s: Float64Array;
  /** n×p, orthonormal columns. */
  v: Mat;
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
