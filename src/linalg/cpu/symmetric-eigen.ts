import { mat, type Mat } from './dense.ts';

export interface SymmetricEigen {
  /** Eigenvalues, descending. */
  values: Float64Array;
  /** n×n, column j the unit eigenvector of values[j]. */
  vectors: Mat;
}

/**
 * Eigendecomposition of a symmetric n×n matrix in f64: Householder reduction to tridiagonal
 * form, then the implicit QL algorithm with Wilkinson shifts (EISPACK's tred2 and tql2, as
 * JAMA writes them). About 6n³ flops against the 30–40n³ of Jacobi sweeps, for the n ≈ 100–300
 * eigenproblems that block Krylov iterations solve at every step. Absolute accuracy (‖A‖·ε),
 * which is what Ritz vectors of the largest eigenvalues need; Jacobi (svd.ts) keeps the relative
 * accuracy of small ones.
 */
export function symmetricEigen(a: Mat): SymmetricEigen {
  const n = a.rows;
  if (a.cols !== n) throw new Error(`symmetricEigen: needs a square matrix, got ${n}×${a.cols}`);
  // Work on the transpose of V (row j = column j of V): the QL rotations then touch rows.
  const v = Array.from({ length: n }, (_, i) =>
    Float64Array.from(a.data.subarray(i * n, (i + 1) * n)),
  );
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  if (n > 0) {
    tridiagonalize(v, d, e);
    diagonalize(v, d, e);
  }
  const order = Array.from(d, (_, i) => i).sort((x, y) => d[y] - d[x]);
  const vectors = mat(n, n);
  order.forEach((from, to) => {
    for (let r = 0; r < n; r++) vectors.data[r * n + to] = v[from][r];
  });
  return { values: Float64Array.from(order, (i) => d[i]), vectors };
}

/**
 * tred2: V = A on entry, the orthogonal transformation to tridiagonal form on exit; d gets the
 * diagonal and e the subdiagonal (e[0] = 0). V is stored by columns, V[i][j] = v[j][i], so that
 * the inner loops run along contiguous arrays.
 */
function tridiagonalize(v: Float64Array[], d: Float64Array, e: Float64Array): void {
  const n = d.length;
  const get = (i: number, j: number) => v[j][i];
  const set = (i: number, j: number, x: number) => {
    v[j][i] = x;
  };
  for (let j = 0; j < n; j++) d[j] = get(n - 1, j);
  for (let i = n - 1; i > 0; i--) {
    let scale = 0;
    let h = 0;
    for (let k = 0; k < i; k++) scale += Math.abs(d[k]);
    if (scale === 0) {
      e[i] = d[i - 1];
      for (let j = 0; j < i; j++) {
        d[j] = get(i - 1, j);
        set(i, j, 0);
        set(j, i, 0);
      }
    } else {
      // The Householder vector that zeroes row i left of the subdiagonal.
      for (let k = 0; k < i; k++) {
        d[k] /= scale;
        h += d[k] * d[k];
      }
      let f = d[i - 1];
      let g = Math.sqrt(h);
      if (f > 0) g = -g;
      e[i] = scale * g;
      h -= f * g;
      d[i - 1] = f - g;
      for (let j = 0; j < i; j++) e[j] = 0;
      for (let j = 0; j < i; j++) {
        f = d[j];
        set(j, i, f);
        g = e[j] + get(j, j) * f;
        for (let k = j + 1; k < i; k++) {
          g += get(k, j) * d[k];
          e[k] += get(k, j) * f;
        }
        e[j] = g;
      }
      f = 0;
      for (let j = 0; j < i; j++) {
        e[j] /= h;
        f += e[j] * d[j];
      }
      const hh = f / (h + h);
      for (let j = 0; j < i; j++) e[j] -= hh * d[j];
      for (let j = 0; j < i; j++) {
        f = d[j];
        g = e[j];
        const column = v[j];
        for (let k = j; k < i; k++) column[k] -= f * e[k] + g * d[k];
        d[j] = get(i - 1, j);
        set(i, j, 0);
      }
    }
    d[i] = h;
  }
  // Accumulate the transformations.
  for (let i = 0; i < n - 1; i++) {
    set(n - 1, i, get(i, i));
    set(i, i, 1);
    const h = d[i + 1];
    if (h !== 0) {
      const next = v[i + 1];
      for (let k = 0; k <= i; k++) d[k] = next[k] / h;
      for (let j = 0; j <= i; j++) {
        const column = v[j];
        let g = 0;
        for (let k = 0; k <= i; k++) g += next[k] * column[k];
        for (let k = 0; k <= i; k++) column[k] -= g * d[k];
      }
    }
    for (let k = 0; k <= i; k++) set(k, i + 1, 0);
  }
  for (let j = 0; j < n; j++) {
    d[j] = get(n - 1, j);
    set(n - 1, j, 0);
  }
  set(n - 1, n - 1, 1);
  e[0] = 0;
}

/** tql2: the eigenvalues of the tridiagonal (d, e) into d, the rotations applied to v's rows. */
function diagonalize(v: Float64Array[], d: Float64Array, e: Float64Array): void {
  const n = d.length;
  for (let i = 1; i < n; i++) e[i - 1] = e[i];
  e[n - 1] = 0;
  let f = 0;
  let tst1 = 0;
  const eps = 2 ** -52;
  for (let l = 0; l < n; l++) {
    // Find a negligible subdiagonal element; e[n − 1] = 0 ends the search.
    tst1 = Math.max(tst1, Math.abs(d[l]) + Math.abs(e[l]));
    let m = l;
    while (Math.abs(e[m]) > eps * tst1) m++;
    if (m > l) {
      do {
        // Implicit QL step with the Wilkinson shift.
        let g = d[l];
        let p = (d[l + 1] - g) / (2 * e[l]);
        let r = Math.hypot(p, 1);
        if (p < 0) r = -r;
        d[l] = e[l] / (p + r);
        d[l + 1] = e[l] * (p + r);
        const dl1 = d[l + 1];
        let h = g - d[l];
        for (let i = l + 2; i < n; i++) d[i] -= h;
        f += h;
        p = d[m];
        let c = 1;
        let c2 = c;
        let c3 = c;
        const el1 = e[l + 1];
        let s = 0;
        let s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i];
          h = c * p;
          r = Math.hypot(p, e[i]);
          e[i + 1] = s * r;
          s = e[i] / r;
          c = p / r;
          p = c * d[i] - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]);
          const x = v[i];
          const y = v[i + 1];
          for (let k = 0; k < n; k++) {
            const t = y[k];
            y[k] = s * x[k] + c * t;
            x[k] = c * x[k] - s * t;
          }
        }
        p = (-s * s2 * c3 * el1 * e[l]) / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (Math.abs(e[l]) > eps * tst1);
    }
    d[l] += f;
    e[l] = 0;
  }
}
