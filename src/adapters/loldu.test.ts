// LoLDU's partial pivoted LDU (src/adapters/inits/loldu.ts) against what an LU must satisfy, in
// f64 on random shapes: all steps reproduce W exactly; r steps leave a residual W − B·diag(d)·A
// that is zero on the r pivot rows and the first r columns (the Schur complement); the
// multipliers are bounded by 1 (partial pivoting) and L, U have unit diagonals.
import { describe, expect, it } from 'vitest';
import { mat } from '../linalg/cpu/dense.ts';
import { seededRandom } from '../testing/random.ts';
import { partialLdu } from './inits/loldu.ts';

function residual(w: ReturnType<typeof mat>, rank: number) {
  const { b, a, d } = partialLdu(w, rank);
  const out = Float64Array.from(w.data);
  for (let i = 0; i < w.rows; i++)
    for (let j = 0; j < w.cols; j++)
      for (let k = 0; k < rank; k++)
        out[i * w.cols + j] -= b.data[i * rank + k] * d[k] * a.data[k * w.cols + j];
  return { b, a, d, out };
}

describe('partial LDU (LoLDU)', () => {
  it.each([
    [7, 5],
    [5, 9],
    [13, 13],
  ])('reproduces W [%i × %i] with every step', (rows, cols) => {
    const random = seededRandom(rows * 31 + cols);
    const w = mat(
      rows,
      cols,
      Array.from({ length: rows * cols }, () => random() - 0.5),
    );
    const { out } = residual(w, Math.min(rows, cols));
    expect(Math.max(...out.map(Math.abs))).toBeLessThan(1e-12);
  });

  it.each([
    [11, 6, 3],
    [6, 17, 4],
    [20, 20, 1],
  ])('leaves the Schur complement after r steps: W [%i × %i], r = %i', (rows, cols, rank) => {
    const random = seededRandom(rows + cols * 7 + rank);
    const w = mat(
      rows,
      cols,
      Array.from({ length: rows * cols }, () => random() - 0.5),
    );
    const { b, a, out } = residual(w, rank);
    for (let j = 0; j < rank; j++)
      for (let i = 0; i < rows; i++) expect(Math.abs(out[i * cols + j])).toBeLessThan(1e-12);
    // The pivot rows: where B has its unit diagonal.
    for (let k = 0; k < rank; k++) {
      const row = Array.from({ length: rows }, (_, i) => i).find(
        (i) =>
          b.data[i * rank + k] === 1 &&
          b.data.slice(i * rank + k + 1, (i + 1) * rank).every((x) => x === 0),
      );
      if (row === undefined) throw new Error(`no pivot row for column ${k}`);
      for (let j = 0; j < cols; j++) expect(Math.abs(out[row * cols + j])).toBeLessThan(1e-12);
      expect(a.data[k * cols + k]).toBe(1);
      for (let j = 0; j < k; j++) expect(a.data[k * cols + j]).toBe(0);
    }
    expect(Math.max(...b.data.map(Math.abs))).toBeLessThanOrEqual(1);
  });

  it('passes over a column of zeros without dividing by its zero pivot', () => {
    const w = mat(3, 3, [0, 1, 2, 0, 3, 4, 0, 5, 7]);
    const { d, out, a, b } = residual(w, 2);
    expect(d[0]).toBe(0);
    expect([...a.data, ...b.data].every(Number.isFinite)).toBe(true);
    // The second step pivots on 5 (row 2) and eliminates the second column below the first
    // pivot row, which a zero pivot leaves in the residual whole.
    expect(d[1]).toBe(5);
    for (const i of [1, 2]) expect(Math.abs(out[i * 3 + 1])).toBeLessThan(1e-12);
    expect(Array.from(out.slice(0, 3))).toEqual([0, 1, 2]);
  });
});
