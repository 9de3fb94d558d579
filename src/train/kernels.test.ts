// The training kernels against plain CPU references (f64): cross-entropy and its gradient,
// RMSNorm's and LayerNorm's forward and backward passes, the activations' (SwiGLU, GeGLU, gelu,
// softcap), AdamW, Σ grad², dropout — in both layouts of the row kernels (a workgroup per row on
// GPUs, an invocation per row on CPU adapters).
import { describe, expect, it } from 'vitest';
import { maxRelativeError, maxScaledError } from '../linalg/compare.ts';
import type { Gpu } from '../gpu/device.ts';
import { run } from '../gpu/dispatch.ts';
import { readF32 } from '../gpu/readback.ts';
import { createTensor, releaseTensor, reshaped, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import {
  activation,
  dropout,
  gatedActivation,
  layerNorm,
  rmsNorm,
  softcap,
  swiglu,
  type ActivationKind,
} from '../model/ops.ts';
import { useGpu } from '../testing/gpu.ts';
import { randomArray, seededRandom } from '../testing/random.ts';
import { keeps } from '../linalg/random.ts';
import {
  activationBackward,
  adamwStep,
  crossEntropy,
  gatedActivationBackward,
  layerNormBackward,
  rmsNormBackward,
  softcapBackward,
  sumSquares,
  swigluBackward,
} from './kernels.ts';

const device = useGpu();

/** The device as a GPU (workgroup-per-row kernels) or as a CPU adapter (serial kernels). */
const LAYOUTS: [string, () => Gpu][] = [
  [
    'one invocation per row',
    () => ({ ...device(), adapter: { ...device().adapter, isFallback: true } }),
  ],
  [
    'one workgroup per row',
    () => ({ ...device(), adapter: { ...device().adapter, isFallback: false } }),
  ],
];

describe.each(LAYOUTS)('row kernels, %s', (_, gpu) => {
  it.each([
    [5, 7],
    [37, 515],
    [3, 1],
  ])(
    'cross-entropy of %i rows × %i logits: loss and gradient, masked rows zero',
    async (rows, vocab) => {
      const random = seededRandom(rows * vocab);
      const logits = randomArray(random, rows * vocab, -4, 4);
      const targets = Int32Array.from({ length: rows }, (_, r) =>
        r % 3 === 1 ? -1 : Math.floor(random() * vocab),
      );
      const scale = 0.25;
      const lt = uploadTensor(gpu(), logits, [rows, vocab], 'f32');
      const tt = uploadTensor(gpu(), targets, [rows], 'i32');
      const loss = await run(gpu(), (b) => crossEntropy(b, lt, tt, scale));
      const expectedLoss = new Float64Array(rows);
      const expectedGrad = new Float64Array(rows * vocab);
      for (let r = 0; r < rows; r++) {
        if (targets[r] < 0) continue;
        const row = Array.from(logits.subarray(r * vocab, (r + 1) * vocab));
        const max = Math.max(...row);
        const z = row.reduce((s, v) => s + Math.exp(v - max), 0);
        expectedLoss[r] = Math.log(z) + max - row[targets[r]];
        row.forEach(
          (v, j) =>
            (expectedGrad[r * vocab + j] =
              (Math.exp(v - max) / z - (j === targets[r] ? 1 : 0)) * scale),
        );
      }
      expect(maxScaledError(await readF32(gpu(), loss), expectedLoss)).toBeLessThan(1e-5);
      expect(maxScaledError(await readF32(gpu(), lt), expectedGrad)).toBeLessThan(1e-5);
      releaseTensor(gpu(), lt, tt, loss);
    },
  );

  it.each([
    [4, 12, 0],
    [9, 300, 0],
    [7, 5, 1],
  ])('RMSNorm forward and backward on %i × %i, weight offset %i', async (rows, d, offset) => {
    const random = seededRandom(d);
    const x = randomArray(random, rows * d);
    const w = randomArray(random, d, 0.5, 1.5);
    const dy = randomArray(random, rows * d);
    // Uploaded as [rows × 1 × d] and normalised through a [rows × d] view, as per-head q/k norms
    // see their heads.
    const xt = uploadTensor(gpu(), x, [rows, 1, d], 'f32');
    const [wt, dyt] = [
      uploadTensor(gpu(), w, [d], 'f32'),
      uploadTensor(gpu(), dy, [rows, d], 'f32'),
    ];
    const xv = reshaped(xt, [rows, d]);
    const eps = 1e-5;
    const [y, dx] = await run(gpu(), (b) =>
      offset === 0
        ? [rmsNorm(b, xv, wt, eps), rmsNormBackward(b, xv, wt, dyt, eps)]
        : [rmsNorm(b, xv, wt, eps, offset), rmsNormBackward(b, xv, wt, dyt, eps, offset)],
    );
    const expectedY = new Float64Array(rows * d);
    const expectedDx = new Float64Array(rows * d);
    for (let r = 0; r < rows; r++) {
      const row = x.subarray(r * d, (r + 1) * d);
      const inv = 1 / Math.sqrt(row.reduce((s, v) => s + v * v, 0) / d + eps);
      let dot = 0;
      for (let i = 0; i < d; i++) dot += (offset + w[i]) * dy[r * d + i] * row[i];
      for (let i = 0; i < d; i++) {
        expectedY[r * d + i] = row[i] * inv * (offset + w[i]);
        expectedDx[r * d + i] =
          inv * (offset + w[i]) * dy[r * d + i] - (row[i] * inv ** 3 * dot) / d;
      }
    }
    expect(maxScaledError(await readF32(gpu(), y), expectedY)).toBeLessThan(1e-5);
    expect(maxScaledError(await readF32(gpu(), dx), expectedDx)).toBeLessThan(1e-5);
    releaseTensor(gpu(), xt, wt, dyt, y, dx);
  });

  it.each([
    [4, 12, 0],
    [9, 300, 3],
    [3, 1, 0],
  ])('LayerNorm forward and backward on %i × %i, values around %i', async (rows, d, mean) => {
    const random = seededRandom(d + 1);
    const x = randomArray(random, rows * d, mean - 1, mean + 1);
    const w = randomArray(random, d, 0.5, 1.5);
    const bias = randomArray(random, d);
    const dy = randomArray(random, rows * d);
    const [xt, wt, bt, dyt] = [
      uploadTensor(gpu(), x, [rows, d], 'f32'),
      uploadTensor(gpu(), w, [d], 'f32'),
      uploadTensor(gpu(), bias, [d], 'f32'),
      uploadTensor(gpu(), dy, [rows, d], 'f32'),
    ];
    const eps = 1e-5;
    const [y, dx] = await run(gpu(), (b) => [
      layerNorm(b, xt, wt, bt, eps),
      layerNormBackward(b, xt, wt, dyt, eps),
    ]);
    // Reference backward: the chain rule through μ and σ² taken term by term.
    const expectedY = new Float64Array(rows * d);
    const expectedDx = new Float64Array(rows * d);
    for (let r = 0; r < rows; r++) {
      const row = Array.from(x.subarray(r * d, (r + 1) * d));
      const mu = row.reduce((s, v) => s + v, 0) / d;
      const variance = row.reduce((s, v) => s + (v - mu) ** 2, 0) / d;
      const inv = 1 / Math.sqrt(variance + eps);
      const g = row.map((_, i) => w[i] * dy[r * d + i]);
      const dVar = g.reduce((s, gi, i) => s + gi * (row[i] - mu), 0) * -0.5 * inv ** 3;
      const dMu = -inv * g.reduce((s, gi) => s + gi, 0);
      for (let i = 0; i < d; i++) {
        expectedY[r * d + i] = (row[i] - mu) * inv * w[i] + bias[i];
        expectedDx[r * d + i] = g[i] * inv + (dVar * 2 * (row[i] - mu)) / d + dMu / d;
      }
    }
    expect(maxScaledError(await readF32(gpu(), y), expectedY)).toBeLessThan(1e-5);
    expect(maxScaledError(await readF32(gpu(), dx), expectedDx)).toBeLessThan(1e-5);
    releaseTensor(gpu(), xt, wt, bt, dyt, y, dx);
  });
});

describe('elementwise training kernels', () => {
  it('SwiGLU forward and backward', async () => {
    const random = seededRandom(2);
    const n = 1031;
    const [g, u, da] = [
      randomArray(random, n, -6, 6),
      randomArray(random, n),
      randomArray(random, n),
    ];
    const [gt, ut, dat] = [g, u, da].map((v) => uploadTensor(device(), v, [n], 'f32'));
    const [act, grads] = await run(
      device(),
      (b) => [swiglu(b, gt, ut), swigluBackward(b, gt, ut, dat)] as const,
    );
    const sig = (v: number) => 1 / (1 + Math.exp(-v));
    expect(
      maxScaledError(
        await readF32(device(), act),
        Array.from(g, (v, i) => v * sig(v) * u[i]),
      ),
    ).toBeLessThan(1e-5);
    expect(
      maxScaledError(
        await readF32(device(), grads.dUp),
        Array.from(g, (v, i) => da[i] * v * sig(v)),
      ),
    ).toBeLessThan(1e-5);
    const dGate = Array.from(g, (v, i) => da[i] * u[i] * sig(v) * (1 + v * (1 - sig(v))));
    expect(maxScaledError(await readF32(device(), grads.dGate), dGate)).toBeLessThan(1e-5);
    releaseTensor(device(), gt, ut, dat, act, grads.dGate, grads.dUp);
  });

  /** (f(x), f'(x)) in f64. */
  const REFERENCES: Record<ActivationKind, (x: number) => [number, number]> = {
    silu: (x) => {
      const s = 1 / (1 + Math.exp(-x));
      return [x * s, s * (1 + x * (1 - s))];
    },
    gelu_tanh: (x) => {
      const c = Math.sqrt(2 / Math.PI);
      const t = Math.tanh(c * (x + 0.044715 * x ** 3));
      return [
        0.5 * x * (1 + t),
        0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x),
      ];
    },
  };
  // Beyond the random range: where exp, x³ or a naive tanh overflow.
  const EXTREMES = [-3e38, -1e30, -1e4, -50, -10.5, -9.5, 9.5, 10.5, 50, 1e4, 1e30, 3e38];

  it.each(['silu', 'gelu_tanh'] as const)(
    'gated and plain %s, forward and backward, finite at extremes',
    async (kind) => {
      const random = seededRandom(kind.length);
      const n = 1031;
      const g = Float32Array.from([
        ...randomArray(random, n - EXTREMES.length, -6, 6),
        ...EXTREMES,
      ]);
      const [u, da] = [randomArray(random, n), randomArray(random, n)];
      const [gt, ut, dat] = [g, u, da].map((v) => uploadTensor(device(), v, [n], 'f32'));
      const [act, grads, y, dx] = await run(
        device(),
        (b) =>
          [
            gatedActivation(b, gt, ut, kind),
            gatedActivationBackward(b, gt, ut, dat, kind),
            activation(b, gt, kind),
            activationBackward(b, gt, dat, kind),
          ] as const,
      );
      const ref = Array.from(g, (v) => REFERENCES[kind](v));
      const expected: [Tensor, number[]][] = [
        [act, ref.map(([f], i) => f * u[i])],
        [grads.dGate, ref.map(([, df], i) => da[i] * u[i] * df)],
        [grads.dUp, ref.map(([f], i) => da[i] * f)],
        [y, ref.map(([f]) => f)],
        [dx, ref.map(([, df], i) => da[i] * df)],
      ];
      const m = n - EXTREMES.length;
      for (const [tensor, values] of expected) {
        const actual = await readF32(device(), tensor);
        expect(actual.every(Number.isFinite)).toBe(true);
        // The random part against its scale, the extremes each against max(|f|, 1).
        expect(maxScaledError(actual.subarray(0, m), values.slice(0, m))).toBeLessThan(1e-5);
        expect(maxRelativeError(actual.subarray(m), values.slice(m))).toBeLessThan(1e-6);
      }
      releaseTensor(device(), gt, ut, dat, act, grads.dGate, grads.dUp, y, dx);
    },
  );

  it.each([
    [5, 20],
    [30, 1e-3],
  ])('softcap %s over values up to ±%s, forward and backward', async (cap, range) => {
    const random = seededRandom(cap);
    const n = 517;
    const x = Float32Array.from([
      ...randomArray(random, n - 4, -range, range),
      -3e38,
      -1e30,
      1e30,
      3e38,
    ]);
    const dy = randomArray(random, n);
    const [xt, dyt] = [x, dy].map((v) => uploadTensor(device(), v, [n], 'f32'));
    const [y, dx] = await run(device(), (b) => [
      softcap(b, xt, cap),
      softcapBackward(b, xt, dyt, cap),
    ]);
    const t = Array.from(x, (v) => Math.tanh(v / cap));
    // Relative to each value (floor 1e-30): near 0 the series keeps tanh's relative precision.
    expect(
      maxRelativeError(
        await readF32(device(), y),
        t.map((v) => cap * v),
        1e-30,
      ),
    ).toBeLessThan(1e-5);
    expect(
      maxScaledError(
        await readF32(device(), dx),
        t.map((v, i) => dy[i] * (1 - v * v)),
      ),
    ).toBeLessThan(1e-5);
    releaseTensor(device(), xt, dyt, y, dx);
  });

  it('dropout keeps the fraction asked for, scales by 1/keep, and matches the CPU mask', async () => {
    const n = 20000;
    const x = new Float32Array(n).fill(2);
    const xt = uploadTensor(device(), x, [n], 'f32');
    const yt = await run(device(), (b) => dropout(b, xt, 0.3, 77));
    const y = await readF32(device(), yt);
    const kept = y.filter((v) => v !== 0);
    expect(kept.length / n).toBeGreaterThan(0.68);
    expect(kept.length / n).toBeLessThan(0.72);
    expect(kept.every((v) => Math.abs(v - 2 / 0.7) < 1e-6)).toBe(true);
    for (let i = 0; i < 500; i++) expect(y[i] !== 0, `element ${i}`).toBe(keeps(77, i, 0.7));
    releaseTensor(device(), xt, yt);
  });

  it('Σ grad² per tensor and AdamW (decoupled weight decay, bias correction, clip scale) over three steps', async () => {
    const random = seededRandom(9);
    const n = 777;
    const param = randomArray(random, n);
    const grads = [randomArray(random, n), randomArray(random, n), randomArray(random, n)];
    const h = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 };
    const clip = 0.5;
    const pt = uploadTensor(device(), param, [n], 'f32');
    const m = uploadTensor(device(), new Float32Array(n), [n], 'f32');
    const v = uploadTensor(device(), new Float32Array(n), [n], 'f32');
    const sums = createTensor(device(), [3], 'f32');
    const expected = Float64Array.from(param);
    const em = new Float64Array(n);
    const ev = new Float64Array(n);
    for (let t = 1; t <= 3; t++) {
      const gt = uploadTensor(device(), grads[t - 1], [n], 'f32');
      await run(device(), (b) => {
        sumSquares(b, gt, sums, t - 1);
        adamwStep(b, { param: pt, grad: gt, m, v }, h, t, clip);
      });
      releaseTensor(device(), gt);
      for (let i = 0; i < n; i++) {
        const g = grads[t - 1][i] * clip;
        em[i] = h.beta1 * em[i] + (1 - h.beta1) * g;
        ev[i] = h.beta2 * ev[i] + (1 - h.beta2) * g * g;
        const update = em[i] / (1 - h.beta1 ** t) / (Math.sqrt(ev[i] / (1 - h.beta2 ** t)) + h.eps);
        expected[i] = expected[i] * (1 - h.lr * h.weightDecay) - h.lr * update;
      }
    }
    expect(maxScaledError(await readF32(device(), pt), expected)).toBeLessThan(1e-5);
    const squares = grads.map((g) => g.reduce((s, x) => s + x * x, 0));
    expect(maxScaledError(await readF32(device(), sums), squares)).toBeLessThan(1e-5);
    releaseTensor(device(), pt, m, v, sums);
  });
});
