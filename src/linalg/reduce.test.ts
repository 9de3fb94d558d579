import { describe, expect, it } from 'vitest';
import { run } from '../gpu/dispatch.ts';
import { readF32 } from '../gpu/readback.ts';
import { releaseTensor, uploadTensor } from '../gpu/tensor.ts';
import { useGpu } from '../testing/gpu.ts';
import { maxRelativeError } from './compare.ts';
import { randomArray, seededRandom } from '../testing/random.ts';
import { reduceRowsCpu } from './cpu/reduce.ts';
import { reduceAll, reduceRows, REDUCE_OPS } from './reduce.ts';

const gpu = useGpu();

/** Sum error bound: f32 rounding grows with the terms' magnitudes, not with the (cancelling) sum. */
function sumTolerance(x: Float32Array, rows: number, cols: number): Float32Array {
  const bound = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < cols; c++) s += Math.abs(x[r * cols + c]);
    bound[r] = s * 1e-6 + 1e-30;
  }
  return bound;
}

describe.each(REDUCE_OPS)('%s', (op) => {
  it.each([1, 7, 4096, 4097, 1000003])('over all of %i elements', async (n) => {
    const x = randomArray(seededRandom(n), n, -1, 1);
    const xt = uploadTensor(gpu(), x, [n], 'f32');
    const out = await run(gpu(), (b) => reduceAll(b, op, xt));
    const [actual] = await readF32(gpu(), out);
    const [expected] = reduceRowsCpu(op, x, 1, n);
    if (op === 'max') expect(actual).toBe(expected);
    else expect(Math.abs(actual - expected)).toBeLessThanOrEqual(sumTolerance(x, 1, n)[0]);
    releaseTensor(gpu(), xt, out);
  });

  it.each([
    [1, 1],
    [7, 1],
    [1, 7],
    [13, 300],
    [5, 9000],
    [3, 0],
    [70000, 3],
    [70000, 65],
    [2000, 100],
    [300, 1500],
  ])('row-wise on [%i × %i]', async (rows, cols) => {
    const x = randomArray(seededRandom(rows * 1000 + cols), rows * cols, -2, 3);
    const xt = uploadTensor(gpu(), x, [rows, cols], 'f32');
    const out = await run(gpu(), (b) => reduceRows(b, op, xt));
    expect(out.shape).toEqual([rows]);
    const actual = await readF32(gpu(), out);
    const expected = reduceRowsCpu(op, x, rows, cols);
    if (op === 'max') {
      expect(actual).toEqual(expected);
    } else {
      const bound = sumTolerance(x, rows, cols);
      const worst = Math.max(...actual.map((v, r) => Math.abs(v - expected[r]) / bound[r]));
      expect(worst).toBeLessThanOrEqual(1);
    }
    releaseTensor(gpu(), xt, out);
  });
});

it('sums large positive values with small relative error', async () => {
  const n = 1000003;
  const x = randomArray(seededRandom(3), n, 0, 1000);
  const xt = uploadTensor(gpu(), x, [n], 'f32');
  const out = await run(gpu(), (b) => reduceAll(b, 'sum', xt));
  expect(maxRelativeError(await readF32(gpu(), out), reduceRowsCpu('sum', x, 1, n))).toBeLessThan(
    1e-6,
  );
});
