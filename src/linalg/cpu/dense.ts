// A small f64 dense-matrix toolkit for CPU references and the host side of QR/SVD
// (k×k Cholesky factors, small cores). Row-major, plain data.

export interface Mat {
  rows: number;
  cols: number;
  data: Float64Array;
}

export function mat(rows: number, cols: number, data?: ArrayLike<number>): Mat {
  const m = { rows, cols, data: new Float64Array(rows * cols) };
  if (data) {
    if (data.length !== rows * cols)
      throw new Error(`${data.length} values for a ${rows}×${cols} matrix`);
    m.data.set(data);
  }
  return m;
}

export function identity(n: number): Mat {
  const m = mat(n, n);
  for (let i = 0; i < n; i++) m.data[i * n + i] = 1;
  return m;
}

export function get(m: Mat, i: number, j: number): number {
  return m.data[i * m.cols + j];
}

export function transpose(m: Mat): Mat {
  const t = mat(m.cols, m.rows);
  for (let i = 0; i < m.rows; i++)
    for (let j = 0; j < m.cols; j++) t.data[j * m.rows + i] = m.data[i * m.cols + j];
  return t;
}

export function multiply(a: Mat, b: Mat): Mat {
  if (a.cols !== b.rows) throw new Error(`multiply: ${a.rows}×${a.cols} · ${b.rows}×${b.cols}`);
  const c = mat(a.rows, b.cols);
  for (let i = 0; i < a.rows; i++) {
    for (let k = 0; k < a.cols; k++) {
      const aik = a.data[i * a.cols + k];
      if (aik === 0) continue;
      const bRow = k * b.cols;
      const cRow = i * b.cols;
      for (let j = 0; j < b.cols; j++) c.data[cRow + j] += aik * b.data[bRow + j];
    }
  }
  return c;
}

/** Columns [from, to) of m. */
export function columns(m: Mat, from: number, to: number): Mat {
  const out = mat(m.rows, to - from);
  for (let i = 0; i < m.rows; i++) {
    for (let j = from; j < to; j++) out.data[i * out.cols + j - from] = m.data[i * m.cols + j];
  }
  return out;
}

export function frobenius(m: Mat): number {
  let s = 0;
  for (const v of m.data) s += v * v;
  return Math.sqrt(s);
}

/** max |a − b| over entries. */
export function maxAbsDiff(a: Mat, b: Mat): number {
  if (a.rows !== b.rows || a.cols !== b.cols) throw new Error('maxAbsDiff: shapes differ');
  let worst = 0;
  for (let i = 0; i < a.data.length; i++) worst = Math.max(worst, Math.abs(a.data[i] - b.data[i]));
  return worst;
}

/** ‖QᵀQ − I‖_max: how far the columns of q are from orthonormal. */
export function orthogonalityError(q: Mat): number {
  return maxAbsDiff(multiply(transpose(q), q), identity(q.cols));
}

export function toF32(m: Mat): Float32Array {
  return Float32Array.from(m.data);
}

/** Factors of a low-rank product B·A: b is out × rank, a is rank × in, row-major. */
export interface Factors {
  rank: number;
  a: ArrayLike<number>;
  b: ArrayLike<number>;
}

/** Row o of s·B·A into `row` (its length is A's width), summed in f64. */
export function productRow(f: Factors, s: number, o: number, row: Float64Array): void {
  const width = row.length;
  row.fill(0);
  for (let j = 0; j < f.rank; j++) {
    const b = s * f.b[o * f.rank + j];
    if (b === 0) continue;
    for (let i = 0; i < width; i++) row[i] += b * f.a[j * width + i];
  }
}
