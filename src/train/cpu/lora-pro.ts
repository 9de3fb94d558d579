// The CPU reference of LoRA-Pro's corrected gradients (src/train/lora-pro.ts), in f64, written
// from the paper's closed form term by term, with other solvers than the trainer's host side:
// Gauss–Jordan inverses, the projector I − B(BᵀB)⁻¹Bᵀ formed densely, and the Sylvester
// equation S_B·X + X·S_A = C as one r² × r² linear system. For factors of full rank.
import { identity, mat, multiply, transpose, type Mat } from '../../linalg/cpu/dense.ts';

/** X with M·X = R, by Gauss–Jordan elimination with partial pivoting. */
function solve(m: Mat, rhs: Mat): Mat {
  const n = m.rows;
  const a = m.data.slice();
  const x = rhs.data.slice();
  const k = rhs.cols;
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let row = col + 1; row < n; row++)
      if (Math.abs(a[row * n + col]) > Math.abs(a[pivot * n + col])) pivot = row;
    for (let j = 0; j < n; j++)
      [a[col * n + j], a[pivot * n + j]] = [a[pivot * n + j], a[col * n + j]];
    for (let j = 0; j < k; j++)
      [x[col * k + j], x[pivot * k + j]] = [x[pivot * k + j], x[col * k + j]];
    const d = a[col * n + col];
    for (let row = 0; row < n; row++) {
      if (row === col) continue;
      const f = a[row * n + col] / d;
      for (let j = 0; j < n; j++) a[row * n + j] -= f * a[col * n + j];
      for (let j = 0; j < k; j++) x[row * k + j] -= f * x[col * k + j];
    }
  }
  for (let row = 0; row < n; row++) for (let j = 0; j < k; j++) x[row * k + j] /= a[row * n + row];
  return mat(n, k, x);
}

/** M⁻¹ of a small invertible matrix. */
export const inverse = (m: Mat) => solve(m, identity(m.rows));

/** α·a + β·b. */
function combine(a: Mat, b: Mat, alpha: number, beta: number): Mat {
  return mat(
    a.rows,
    a.cols,
    a.data.map((v, i) => alpha * v + beta * b.data[i]),
  );
}

/** X with S_B·X + X·S_A = C: row-major vec(X) solves (S_B ⊗ I + I ⊗ S_Aᵀ)·vec(X) = vec(C). */
function sylvester(sb: Mat, sa: Mat, c: Mat): Mat {
  const r = sb.rows;
  const system = mat(r * r, r * r);
  for (let i = 0; i < r; i++)
    for (let j = 0; j < r; j++)
      for (let k = 0; k < r; k++) {
        system.data[(i * r + j) * r * r + k * r + j] += sb.data[i * r + k];
        system.data[(i * r + j) * r * r + i * r + k] += sa.data[k * r + j];
      }
  return mat(r, r, solve(system, mat(r * r, 1, c.data)).data);
}

/** LoRA-Pro's gA', gB' and X for factors A [r × in], B [out × r], gradients gA, gB, scaling s. */
export function cpuLoraPro(
  a: Mat,
  b: Mat,
  gA: Mat,
  gB: Mat,
  s: number,
): { gA: Mat; gB: Mat; x: Mat } {
  const s2 = s * s;
  const bTb = multiply(transpose(b), b);
  const aAt = multiply(a, transpose(a));
  const inverseB = inverse(bTb);
  const inverseA = inverse(aAt);
  const rhs = multiply(multiply(inverseB, gA), transpose(a));
  const x = sylvester(bTb, aAt, combine(rhs, rhs, -1 / s2, 0));
  const projector = combine(identity(b.rows), multiply(multiply(b, inverseB), transpose(b)), 1, -1);
  return {
    gA: combine(multiply(inverseB, gA), multiply(x, a), 1 / s2, 1),
    gB: combine(multiply(multiply(projector, gB), inverseA), multiply(b, x), 1 / s2, -1),
    x,
  };
}
