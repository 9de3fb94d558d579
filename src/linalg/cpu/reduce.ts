import type { ReduceOp } from '../reduce.ts';

/** CPU reference for shaders/reduce.wgsl on x [rows × cols]; sums accumulate in f64. */
export function reduceRowsCpu(
  op: ReduceOp,
  x: Float32Array,
  rows: number,
  cols: number,
): Float32Array {
  const out = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let acc = op === 'sum' ? 0 : -Infinity;
    for (let c = 0; c < cols; c++) {
      const v = x[r * cols + c];
      acc = op === 'sum' ? acc + v : Math.max(acc, v);
    }
    out[r] = acc;
  }
  return out;
}
