import { describe, expect, it } from 'vitest';
import { Batch, run } from '../gpu/dispatch.ts';
import { ShapeError } from '../gpu/errors.ts';
import { readF32 } from '../gpu/readback.ts';
import { releaseTensor, uploadTensor } from '../gpu/tensor.ts';
import { useGpu } from '../testing/gpu.ts';
import { maxRelativeError } from './compare.ts';
import { randomArray, seededRandom } from '../testing/random.ts';
import { affineCpu, binaryCpu, unaryCpu } from './cpu/elementwise.ts';
import { affine, axpy, binary, BINARY_OPS, unary, UNARY_OPS, type UnaryOp } from './elementwise.ts';

const gpu = useGpu();

// Awkward sizes: one element, a prime below one workgroup, one past a workgroup,
// and a prime above 1M (spans many workgroups and a partial last one).
const SIZES = [1, 7, 257, 1000003];

/** Inputs inside each op's domain. */
const DOMAIN: Record<UnaryOp, [number, number]> = {
  neg: [-10, 10],
  abs: [-10, 10],
  exp: [-20, 20],
  log: [1e-3, 1e3],
  sqrt: [0, 1e3],
  square: [-100, 100],
  relu: [-10, 10],
  sigmoid: [-40, 40],
  silu: [-40, 40],
  tanh: [-20, 20],
};

/**
 * Where WGSL bounds an op's error absolutely rather than relatively, errors are measured
 * against max(|expected|, 1): log has 2⁻²¹ absolute error on [0.5, 2] and tanh inherits
 * sinh/cosh's error, which is absolute near 0 (WGSL spec, "Floating Point Accuracy").
 */
const ABSOLUTE_NEAR_ZERO = new Set<UnaryOp>(['log', 'tanh']);

describe('unary ops match the CPU reference', () => {
  for (const op of UNARY_OPS) {
    it.each(SIZES)(`${op} on %i elements`, async (n) => {
      const [lo, hi] = DOMAIN[op];
      const x = randomArray(seededRandom(n), n, lo, hi);
      const xt = uploadTensor(gpu(), x, [n], 'f32');
      const yt = await run(gpu(), (b) => unary(b, op, xt));
      const y = await readF32(gpu(), yt);
      releaseTensor(gpu(), xt, yt);
      const floor = ABSOLUTE_NEAR_ZERO.has(op) ? 1 : 1e-6;
      expect(maxRelativeError(y, unaryCpu(op, x), floor)).toBeLessThan(2e-6);
    });
  }
});

it('covers tensors needing more workgroups than one grid dimension holds', async () => {
  const n = gpu().limits.maxComputeWorkgroupsPerDimension * 256 + 1;
  const x = randomArray(seededRandom(11), n);
  const xt = uploadTensor(gpu(), x, [n], 'f32');
  const yt = await run(gpu(), (b) => unary(b, 'neg', xt));
  expect(maxRelativeError(await readF32(gpu(), yt), unaryCpu('neg', x))).toBe(0);
  releaseTensor(gpu(), xt, yt);
});

describe('affine', () => {
  it.each(SIZES)('alpha·x + beta on %i elements', async (n) => {
    const x = randomArray(seededRandom(n + 1), n);
    const xt = uploadTensor(gpu(), x, [n], 'f32');
    const yt = await run(gpu(), (b) => affine(b, xt, -2.5, 0.75));
    // The sum may cancel: measure the error against the size of the terms (~1), not the result.
    expect(maxRelativeError(await readF32(gpu(), yt), affineCpu(x, -2.5, 0.75), 1)).toBeLessThan(
      1e-6,
    );
    releaseTensor(gpu(), xt, yt);
  });
});

describe('axpy', () => {
  it.each(SIZES)('y ← alpha·x + y in place on %i elements', async (n) => {
    const random = seededRandom(n + 3);
    const x = randomArray(random, n);
    const y = randomArray(random, n);
    const xt = uploadTensor(gpu(), x, [n], 'f32');
    const yt = uploadTensor(gpu(), y, [n], 'f32');
    await run(gpu(), (b) => {
      axpy(b, -1.5, xt, yt);
    });
    const expected = y.map((v, i) => Math.fround(-1.5 * x[i] + v));
    expect(maxRelativeError(await readF32(gpu(), yt), expected, 1)).toBeLessThan(1e-6);
    releaseTensor(gpu(), xt, yt);
  });

  it('refuses aliased operands', async () => {
    const xt = uploadTensor(gpu(), new Float32Array(4), [4], 'f32');
    await expect(
      run(gpu(), (b) => {
        axpy(b, 1, xt, xt);
      }),
    ).rejects.toThrow(/alias/);
    releaseTensor(gpu(), xt);
  });
});

describe('binary ops match the CPU reference', () => {
  for (const op of BINARY_OPS) {
    it.each(SIZES)(`${op} on %i elements`, async (n) => {
      const random = seededRandom(n * 31 + 7);
      const a = randomArray(random, n);
      // Keep divisors away from zero so the relative error stays meaningful.
      const b = randomArray(random, n, 0.5, 2).map((v, i) => (i % 2 ? v : -v));
      const at = uploadTensor(gpu(), a, [n], 'f32');
      const bt = uploadTensor(gpu(), b, [n], 'f32');
      const out = await run(gpu(), (batch) => binary(batch, op, at, bt));
      expect(maxRelativeError(await readF32(gpu(), out), binaryCpu(op, a, b), 1e-6)).toBeLessThan(
        1e-6,
      );
      releaseTensor(gpu(), at, bt, out);
    });
  }

  it('broadcasts a row vector and a scalar over leading dimensions', async () => {
    const rows = 13;
    const cols = 29;
    const random = seededRandom(5);
    const a = randomArray(random, rows * cols);
    const bias = randomArray(random, cols);
    const at = uploadTensor(gpu(), a, [rows, cols], 'f32');
    const bt = uploadTensor(gpu(), bias, [cols], 'f32');
    const st = uploadTensor(gpu(), new Float32Array([3]), [1], 'f32');
    const batch = new Batch(gpu());
    const added = binary(batch, 'add', at, bt);
    const scaled = binary(batch, 'mul', added, st);
    await batch.submit();
    const expected = binaryCpu('mul', binaryCpu('add', a, bias), new Float32Array([3]));
    expect(maxRelativeError(await readF32(gpu(), scaled), expected, 1e-6)).toBeLessThan(1e-6);
    releaseTensor(gpu(), at, bt, st, added, scaled);
  });

  it('writes into a given tensor, and refuses one that aliases an operand', async () => {
    const random = seededRandom(6);
    const a = randomArray(random, 37);
    const b = randomArray(random, 37);
    const at = uploadTensor(gpu(), a, [37], 'f32');
    const bt = uploadTensor(gpu(), b, [37], 'f32');
    const into = uploadTensor(gpu(), new Float32Array(37).fill(9), [37], 'f32');
    const out = await run(gpu(), (batch) => binary(batch, 'mul', at, bt, into));
    expect(out).toBe(into);
    expect(maxRelativeError(await readF32(gpu(), into), binaryCpu('mul', a, b), 1e-6)).toBeLessThan(
      1e-6,
    );
    expect(() => binary(new Batch(gpu()), 'mul', at, bt, at)).toThrow(/alias neither/);
    releaseTensor(gpu(), at, bt, into);
  });

  it('chains dependent ops within one batch (each dispatch sees the previous result)', async () => {
    const n = 1000;
    const x = randomArray(seededRandom(9), n);
    const xt = uploadTensor(gpu(), x, [n], 'f32');
    const batch = new Batch(gpu());
    let t = xt;
    for (let i = 0; i < 20; i++) t = binary(batch, 'add', t, xt);
    await batch.submit();
    const expected = x.map((v) => v * 21);
    expect(maxRelativeError(await readF32(gpu(), t), expected, 1e-6)).toBeLessThan(1e-5);
  });

  it('refuses shapes that do not broadcast, naming both', () => {
    const at = uploadTensor(gpu(), new Float32Array(6), [2, 3], 'f32');
    const bt = uploadTensor(gpu(), new Float32Array(2), [2], 'f32');
    expect(() => binary(new Batch(gpu()), 'add', at, bt)).toThrow(ShapeError);
    expect(() => binary(new Batch(gpu()), 'add', at, bt)).toThrow(
      /\[2\] does not broadcast over \[2×3\]/,
    );
    releaseTensor(gpu(), at, bt);
  });
});
