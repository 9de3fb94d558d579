// LoRA-Pro's gradient correction against an f64 evaluation of the paper's closed form, the
// property it is for (its low-rank update is the best approximation of the full gradient), and
// training stories260K with it.
import { describe, expect, it } from 'vitest';
import { TARGET_PRESETS } from '../adapters/config.ts';
import { readF32 } from '../gpu/readback.ts';
import { releaseTensor, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import { relativeNormError } from '../linalg/compare.ts';
import { frobenius, mat, multiply, transpose, type Mat } from '../linalg/cpu/dense.ts';
import { randomMat } from '../linalg/cpu/generate.ts';
import { createGpuModel } from '../model/forward.ts';
import { readLlama2c } from '../model/llama2c.ts';
import { readLlama2cTokenizer } from '../model/llama2c-tokenizer.ts';
import { fromLlama2c } from '../model/tokenizer.ts';
import { builtIn } from '../testing/fixtures.ts';
import { useGpu } from '../testing/gpu.ts';
import { cpuLoraPro, inverse } from './cpu/lora-pro.ts';
import { prepareDataset } from './data.ts';
import { loraProGradients } from './lora-pro.ts';
import { styleCorpus } from '../studies/style-corpus.ts';
import { DEFAULT_SETTINGS, train } from './trainer.ts';

const gpu = useGpu();

const add = (a: Mat, b: Mat, beta = 1): Mat => ({
  ...a,
  data: a.data.map((v, i) => v + beta * b.data[i]),
});
const scale = (a: Mat, f: number): Mat => ({ ...a, data: a.data.map((v) => v * f) });

/** s·(B·gA + gB·A): how a step on A and B moves W. */
const equivalent = (a: Mat, b: Mat, gA: Mat, gB: Mat, s: number) =>
  scale(add(multiply(b, gA), multiply(gB, a)), s);

/** LoRA-Pro on the GPU for one module with these factors and plain gradients. */
async function onGpu(a: Mat, b: Mat, gA: Mat, gB: Mat, s: number) {
  const f32 = (m: Mat) => uploadTensor(gpu(), Float32Array.from(m.data), [m.rows, m.cols], 'f32');
  const tensors: Tensor[] = [f32(a), f32(b), f32(gA), f32(gB)];
  const [ta, tb, ga, gb] = tensors;
  try {
    await loraProGradients(gpu(), [{ path: 'm', scale: s, a: ta, b: tb, grads: { a: ga, b: gb } }]);
    return {
      gA: mat(gA.rows, gA.cols, await readF32(gpu(), ga)),
      gB: mat(gB.rows, gB.cols, await readF32(gpu(), gb)),
    };
  } finally {
    releaseTensor(gpu(), ...tensors);
  }
}

describe('LoRA-Pro gradients', () => {
  const [out, inputs, rank, s] = [37, 29, 4, 1.7];
  const a = randomMat(rank, inputs, 1);
  const b = scale(randomMat(out, rank, 2), 0.3);
  const g = randomMat(out, inputs, 3);
  // The plain LoRA gradients of a loss whose full-weight gradient is G.
  const plainA = scale(multiply(transpose(b), g), s);
  const plainB = scale(multiply(g, transpose(a)), s);

  it('match an f64 evaluation of the closed form', async () => {
    const expected = cpuLoraPro(a, b, plainA, plainB, s);
    const actual = await onGpu(a, b, plainA, plainB, s);
    expect(relativeNormError(actual.gA.data, expected.gA.data)).toBeLessThan(1e-4);
    expect(relativeNormError(actual.gB.data, expected.gB.data)).toBeLessThan(1e-4);
  });

  it('move W + s·B·A by the projection of G, closer to it than any multiple of the plain step', async () => {
    const actual = await onGpu(a, b, plainA, plainB, s);
    const corrected = equivalent(a, b, actual.gA, actual.gB, s);
    // P_B·G + G·P_A − P_B·G·P_A: G projected onto {B·Y + Z·A}.
    const projector = (m: Mat) =>
      multiply(multiply(m, inverse(multiply(transpose(m), m))), transpose(m));
    const pb = projector(b);
    const pa = projector(transpose(a));
    const projection = add(
      add(multiply(pb, g), multiply(g, pa)),
      multiply(multiply(pb, g), pa),
      -1,
    );
    expect(relativeNormError(corrected.data, projection.data)).toBeLessThan(1e-4);

    const plain = equivalent(a, b, plainA, plainB, s);
    const distance = (m: Mat) => frobenius(add(m, g, -1));
    // The best multiple of the plain step: α = ⟨plain, G⟩ / ‖plain‖².
    const alpha = plain.data.reduce((t, v, i) => t + v * g.data[i], 0) / frobenius(plain) ** 2;
    expect(distance(corrected)).toBeLessThan(distance(scale(plain, alpha)));
    expect(distance(corrected)).toBeLessThan(distance(plain));
  });

  it('pick, among equivalent choices, the one closest to the plain gradients (Sylvester X)', () => {
    const { gA, gB, x } = cpuLoraPro(a, b, plainA, plainB, s);
    const offPlain = (dx: Mat) => {
      const shiftedA = add(gA, multiply(dx, a));
      const shiftedB = add(gB, multiply(b, dx), -1);
      return frobenius(add(shiftedA, plainA, -1)) ** 2 + frobenius(add(shiftedB, plainB, -1)) ** 2;
    };
    const zero = mat(rank, rank);
    for (let k = 0; k < rank * rank; k++) {
      const dx = mat(rank, rank);
      dx.data[k] = 1e-3 * (frobenius(x) + 1);
      expect(offPlain(dx)).toBeGreaterThan(offPlain(zero));
      expect(offPlain(scale(dx, -1))).toBeGreaterThan(offPlain(zero));
    }
  });

  it('at B = 0 (PEFT init) move B alone, by gB·(AAᵀ)⁻¹/s²', async () => {
    const zeroB = mat(out, rank);
    const gB = scale(multiply(g, transpose(a)), s);
    const actual = await onGpu(a, zeroB, mat(rank, inputs), gB, s);
    expect(actual.gA.data.every((v) => v === 0)).toBe(true);
    const expected = scale(multiply(gB, inverse(multiply(a, transpose(a)))), 1 / (s * s));
    expect(relativeNormError(actual.gB.data, expected.data)).toBeLessThan(1e-4);
  });
});

describe('training with LoRA-Pro', () => {
  it('lowers the held-out loss of stories260K on the invented style', async () => {
    const { config, weights } = readLlama2c(builtIn('stories260K.bin'), 'stories260K.bin');
    const tokenizer = fromLlama2c(readLlama2cTokenizer(builtIn('tok512.bin'), 512, 'tok512.bin'));
    const data = prepareDataset(styleCorpus(40, 1), 'style.txt', tokenizer, {
      seqLen: 32,
      validationFraction: 0.2,
      seed: 0,
    });
    const model = createGpuModel(gpu(), config, weights);
    try {
      const result = await train({
        gpu: gpu(),
        model,
        baseModel: 'stories260K',
        data,
        config: {
          lora: {
            rank: 4,
            alpha: 8,
            rslora: false,
            targets: TARGET_PRESETS['all-linear'],
            dropout: 0,
            init: 'lora',
          },
          train: {
            ...DEFAULT_SETTINGS,
            steps: 8,
            lr: 1e-2,
            batchSize: 2,
            warmupSteps: 1,
            evalEvery: 0,
            checkpointEvery: 0,
            loraPro: true,
          },
        },
      });
      result.adapter.dispose();
      expect(result.status).toBe('done');
      // Measured: 2.35 → 1.56.
      expect(result.valLossLast).toBeLessThan(0.8 * (result.valLossFirst ?? 0));
    } finally {
      model.dispose();
    }
  });
});
