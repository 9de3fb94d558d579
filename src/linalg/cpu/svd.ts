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
 */
export function jacobiSvd(a: Mat): Svd {
  if (a.rows < a.cols) {
    const t = jacobiSvd(transpose(a));
    return { u: t.v, s: t.s, v: t.u };
  }
  const { rows: m, cols: n } = a;
  const w = mat(m, n, a.data);
  const v = mat(n, n);
  for (let i = 0; i < n; i++) v.data[i * n + i] = 1;
  for (let sweep = 0; sweep < MAX_SWEEPS; sweep++) {
    let rotated = false;
    for (let i = 0; i < n - 1; i++) {
      for (let j = i + 1; j < n; j++) {
        let alpha = 0;
        let beta = 0;
        let gamma = 0;
        for (let r = 0; r < m; r++) {
          const x = w.data[r * n + i];
          const y = w.data[r * n + j];
          alpha += x * x;
          beta += y * y;
          gamma += x * y;
        }
        if (Math.abs(gamma) <= 1e-15 * Math.sqrt(alpha * beta) || gamma === 0) continue;
        rotated = true;
        const [c, s] = jacobiRotation(alpha, beta, gamma);
        rotateColumns(w, i, j, c, s);
        rotateColumns(v, i, j, c, s);
      }
    }
    if (!rotated) break;
  }
  const norms = Array.from({ length: n }, (_, j) => {
    let s = 0;
    for (let r = 0; r < m; r++) s += w.data[r * n + j] ** 2;
    return Math.sqrt(s);
  });
  const order = norms.map((_, j) => j).sort((x, y) => norms[y] - norms[x]);
  const u = mat(m, n);
  const vs = mat(n, n);
  const s = new Float64Array(n);
  order.forEach((j, k) => {
    s[k] = norms[j];
    for (let r = 0; r < m; r++) u.data[r * n + k] = norms[j] > 0 ? w.data[r * n + j] / norms[j] : 0;
    for (let r = 0; r < n; r++) vs.data[r * n + k] = v.data[r * n + j];
  });
  return { u, s, v: vs };
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

function rotateColumns(m: Mat, i: number, j: number, c: number, s: number): void {
  for (let r = 0; r < m.rows; r++) {
    const x = m.data[r * m.cols + i];
    const y = m.data[r * m.cols + j];
    m.data[r * m.cols + i] = c * x - s * y;
    m.data[r * m.cols + j] = s * x + c * y;
  }
}
