// RoPE against a plain CPU reference: full and partial rotary dims, a KV cache's offset and
// packed sequences, the inverse rotation, and the f64 tables with explicit frequencies.
import { describe, expect, it } from 'vitest';
import { run } from '../gpu/dispatch.ts';
import { readF32 } from '../gpu/readback.ts';
import { releaseTensor, uploadTensor } from '../gpu/tensor.ts';
import { maxScaledError } from '../linalg/compare.ts';
import { useGpu } from '../testing/gpu.ts';
import { randomArray, seededRandom } from '../testing/random.ts';
import { rope, ropeTableFrom, type Positions } from './ops.ts';
import { ropeInverseFrequencies } from './rope-scaling.ts';

const device = useGpu();

/** x rotated as shaders/rope.wgsl does, in f64, from the same f32 table. */
function ropeReference(
  x: Float32Array,
  table: Float32Array,
  heads: number,
  headDim: number,
  rotaryDims: number,
  at: Positions,
  sign: 1 | -1,
): Float64Array {
  const y = Float64Array.from(x);
  const tokens = x.length / (heads * headDim);
  const half = rotaryDims / 2;
  for (let t = 0; t < tokens; t++) {
    const pos = at.pos0 + (t % (at.seqLen ?? tokens));
    for (let h = 0; h < heads; h++) {
      const base = (t * heads + h) * headDim;
      for (let j = 0; j < half; j++) {
        const c = table[(pos * half + j) * 2];
        const s = sign * table[(pos * half + j) * 2 + 1];
        const [a, b] = [x[base + j], x[base + j + half]];
        y[base + j] = a * c - b * s;
        y[base + j + half] = b * c + a * s;
      }
    }
  }
  return y;
}

describe('rope', () => {
  it('ropeTableFrom with θ^(−2j/headDim) holds cos and sin computed in f64', () => {
    const table = ropeTableFrom(50, ropeInverseFrequencies(12, 10000));
    expect(table[(37 * 6 + 2) * 2 + 1]).toBe(Math.fround(Math.sin(37 * 10000 ** (-4 / 12))));
  });

  it('ropeTableFrom scales cos and sin by the attention factor', () => {
    const invFreq = Float64Array.from([1, 0.3, 0.01]);
    const table = ropeTableFrom(9, invFreq, 1.25);
    expect(table.length).toBe(9 * 3 * 2);
    expect(table[(8 * 3 + 1) * 2]).toBe(Math.fround(Math.cos(8 * 0.3) * 1.25));
    expect(table[(8 * 3 + 1) * 2 + 1]).toBe(Math.fround(Math.sin(8 * 0.3) * 1.25));
  });

  // [heads, headDim, rotaryDims (undefined: all), positions]
  it.each([
    [3, 10, undefined, { pos0: 3 }],
    [3, 10, 4, { pos0: 3 }],
    [2, 6, 2, { pos0: 0, seqLen: 2 }],
    [5, 8, 6, { pos0: 0, seqLen: 3 }],
  ] as const)(
    '%i heads of %i, rotary dims %s, at %o: forward and inverse',
    async (heads, headDim, rotaryDims, at) => {
      const tokens = 7;
      const dims = rotaryDims ?? headDim;
      const random = seededRandom(heads * headDim + dims);
      const x = randomArray(random, tokens * heads * headDim);
      const table = ropeTableFrom(at.pos0 + tokens, ropeInverseFrequencies(dims, 100), 1.1);
      const [forward, inverse] = [x, x].map((v) =>
        uploadTensor(device(), v, [tokens, heads * headDim], 'f32'),
      );
      const cosSin = uploadTensor(device(), table, [table.length], 'f32');
      await run(device(), (b) => {
        if (rotaryDims === undefined) {
          rope(b, forward, cosSin, heads, headDim, at);
          rope(b, inverse, cosSin, heads, headDim, at, true);
        } else {
          rope(b, forward, cosSin, heads, headDim, at, false, rotaryDims);
          rope(b, inverse, cosSin, heads, headDim, at, true, rotaryDims);
        }
      });
      const expected = (sign: 1 | -1) => ropeReference(x, table, heads, headDim, dims, at, sign);
      const [y, yInverse] = [await readF32(device(), forward), await readF32(device(), inverse)];
      expect(maxScaledError(y, expected(1))).toBeLessThan(1e-6);
      expect(maxScaledError(yInverse, expected(-1))).toBeLessThan(1e-6);
      // The values past the rotary dims pass through untouched.
      for (let i = 0; i < x.length; i++) if (i % headDim >= dims) expect(y[i]).toBe(x[i]);
      releaseTensor(device(), forward, inverse, cosSin);
    },
  );
});
