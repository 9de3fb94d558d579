import { get, mat, type Mat } from './dense.ts';

/**
 * Householder QR in f64 of an m×k matrix (m ≥ k): A = Q·R with Q m×k orthonormal and R k×k
 * upper triangular, diagonal ≥ 0. Stable for any input, rank-deficient included: the
 * CPU reference for the GPU QR.
 */
export function householderQr(a: Mat): { q: Mat; r: Mat } {
  const { rows: m, cols: k } = a;
  if (m < k) throw new Error(`householderQr: needs rows ≥ columns, got ${m}×${k}`);
  const w = mat(m, k, a.data);
  const vs: Float64Array[] = [];
  for (let j = 0; j < k; j++) {
    // Reflector v with (I − 2vvᵀ) w[j:, j] = −sign·‖w[j:, j]‖ e₁.
    let norm = 0;
    for (let i = j; i < m; i++) norm += get(w, i, j) ** 2;
    norm = Math.sqrt(norm);
    const v = new Float64Array(m);
    const alpha = get(w, j, j) >= 0 ? -norm : norm;
    for (let i = j; i < m; i++) v[i] = get(w, i, j);
    v[j] -= alpha;
    let vnorm = 0;
    for (let i = j; i < m; i++) vnorm += v[i] ** 2;
    vnorm = Math.sqrt(vnorm);
    if (vnorm > 0) for (let i = j; i < m; i++) v[i] /= vnorm;
    vs.push(v);
    for (let c = j; c < k; c++) {
      let dot = 0;
      for (let i = j; i < m; i++) dot += v[i] * get(w, i, c);
      for (let i = j; i < m; i++) w.data[i * k + c] -= 2 * v[i] * dot;
    }
  }
  // Q = H₀ H₁ … H_{k−1} applied to the first k columns of the identity.
  const q = mat(m, k);
  for (let j = 0; j < k; j++) q.data[j * k + j] = 1;
  for (let j = k - 1; j >= 0; j--) {
    const v = vs[j];
    for (let c = 0; c < k; c++) {
      let dot = 0;
      for (let i = j; i < m; i++) dot += v[i] * q.data[i * k + c];
      for (let i = j; i < m; i++) q.data[i * k + c] -= 2 * v[i] * dot;
    }
  }
  const r = mat(k, k);
  for (let i = 0; i < k; i++) for (let c = i; c < k; c++) r.data[i * k + c] = get(w, i, c);
  // Make R's diagonal non-negative (flip the matching column of Q) so the factorisation is unique.
  for (let i = 0; i < k; i++) {
    if (r.data[i * k + i] < 0) {
      for (let c = i; c < k; c++) r.data[i * k + c] = -r.data[i * k + c];
      for (let row = 0; row < m; row++) q.data[row * k + i] = -q.data[row * k + i];
    }
  }
  return { q, r };
}

/**
 * Cholesky factor of a symmetric k×k matrix plus `shift`·I: upper triangular R with
 * RᵀR = G + shift·I, or null when a pivot is not positive (G not positive definite).
 */
export function cholesky(g: Mat, shift = 0): Mat | null {
  const k = g.rows;
  const r = mat(k, k);
  for (let j = 0; j < k; j++) {
    let d = get(g, j, j) + shift;
    for (let i = 0; i < j; i++) d -= r.data[i * k + j] ** 2;
    if (!(d > 0)) return null;
    const rjj = Math.sqrt(d);
    r.data[j * k + j] = rjj;
    for (let c = j + 1; c < k; c++) {
      let s = get(g, j, c);
      for (let i = 0; i < j; i++) s -= r.data[i * k + j] * r.data[i * k + c];
      r.data[j * k + c] = s / rjj;
    }
  }
  return r;
}

/** Inverse of a non-singular upper-triangular matrix (back substitution, column by column). */
export function invertUpper(r: Mat): Mat {
  const k = r.rows;
  const inv = mat(k, k);
  for (let c = 0; c < k; c++) {
    for (let i = c; i >= 0; i--) {
      let s = i === c ? 1 : 0;
      for (let j = i + 1; j <= c; j++) s -= r.data[i * k + j] * inv.data[j * k + c];
      inv.data[i * k + c] = s / r.data[i * k + i];
    }
  }
  return inv;
}
