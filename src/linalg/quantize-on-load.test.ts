// Weights quantized on load (`--weights q8_0|q4_k|nf4`, src/model/quantize.ts) on the GPU: NF4's
// decoder gives the CPU dequantizer's bits; matmul with each format's blocks gives the product of
// the dequantized values; a model quantized on load runs close to its f32 self in a fraction of
// the memory, and the CPU path (the dequantized values in f32) gives what the GPU gives.
import { beforeAll, describe, expect, it } from 'vitest';
import { adaptedCpuModel, adaptedGpuModel } from '../adapters/adapted-model.ts';
import { run } from '../gpu/dispatch.ts';
import { readF32 } from '../gpu/readback.ts';
import { releaseTensor, uploadTensor, type QuantDType } from '../gpu/tensor.ts';
import { folderFiles } from '../model/files-node.ts';
import type { ModelConfig } from '../model/config.ts';
import { createGpuModel } from '../model/forward.ts';
import { loadGgufWeights } from '../model/gguf/load.ts';
import { dequantize } from '../model/gguf/quant-types.ts';
import { loadHfFolder } from '../model/hf-folder.ts';
import { gatherRows } from '../model/ops.ts';
import { quantize, type LoadQuantType } from '../model/quantize.ts';
import type { ModelWeights } from '../model/weights.ts';
import { FIXTURES, fixture } from '../testing/fixtures.ts';
import { useGpu } from '../testing/gpu.ts';
import { randomArray, seededRandom } from '../testing/random.ts';
import { maxRelativeError } from './compare.ts';
import { matmulCpu } from './cpu/matmul.ts';
import { matmul, matmulShape } from './matmul.ts';
import { asF32 } from './widen.ts';

const gpu = useGpu();

const FORMATS = [
  ['Q8_0', 'q8_0'],
  ['Q4_K', 'q4_k'],
  ['NF4', 'nf4'],
] as const satisfies readonly (readonly [LoadQuantType, QuantDType])[];

/** Positions where two f32 arrays differ in their bits. */
function bitMismatches(x: Float32Array, y: Float32Array): number {
  const a = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const b = new Uint32Array(y.buffer, y.byteOffset, y.length);
  return a.reduce((n, v, i) => n + Number(v !== b[i]), 0);
}

/** Weights of a [rows × k] matrix: normal-ish, with a few rows ten times larger. */
function weightsOf(rows: number, k: number, seed: number): Float32Array {
  const random = seededRandom(seed);
  return randomArray(random, rows * k).map((v, i) => 0.05 * v * (Math.floor(i / k) % 9 ? 1 : 10));
}

describe('quantized on load, on the GPU', () => {
  it('nf4: widen and gather give the CPU dequantizer’s bits', async () => {
    const [rows, k] = [128, 384];
    const blocks = quantize('NF4', weightsOf(rows, k, 1));
    const values = dequantize('NF4', blocks, rows * k);
    const t = uploadTensor(gpu(), blocks, [rows, k], 'nf4');
    const ids = Uint32Array.of(127, 0, 42, 42, 85);
    const idt = uploadTensor(gpu(), ids, [ids.length], 'u32');
    const [wide, rowsOut] = await Promise.all([
      run(gpu(), (batch) => asF32(batch, t)),
      run(gpu(), (batch) => gatherRows(batch, t, idt)),
    ]);
    expect(bitMismatches(await readF32(gpu(), wide), values)).toBe(0);
    const expected = new Float32Array(ids.length * k);
    for (const [r, id] of ids.entries()) expected.set(values.subarray(id * k, (id + 1) * k), r * k);
    expect(bitMismatches(await readF32(gpu(), rowsOut), expected)).toBe(0);
    releaseTensor(gpu(), t, idt, wide, rowsOut);
  });

  it('refuses an nf4 tensor that is not whole blocks of 16,384 values', () => {
    expect(() => uploadTensor(gpu(), new Uint8Array(8456), [1, 64], 'nf4')).toThrow(
      /nf4\[1×64\]: must hold whole blocks of 16384 values/,
    );
  });

  it.each(FORMATS)(
    '%s: matmul gives the product of the dequantized values',
    async (type, dtype) => {
      const [rows, k] = [64, 512];
      const blocks = quantize(type, weightsOf(rows, k, 2));
      const w = dequantize(type, blocks, rows * k);
      const bt = uploadTensor(gpu(), blocks, [rows, k], dtype);
      const random = seededRandom(3);
      for (const transB of [true, false]) {
        const aShape = transB ? [9, k] : [9, rows];
        const a = randomArray(random, aShape[0] * aShape[1]);
        const at = uploadTensor(gpu(), a, aShape, 'f32');
        const ct = await run(gpu(), (batch) => matmul(batch, at, bt, { transB }));
        const expected = matmulCpu(a, w, matmulShape(aShape, [rows, k], false, transB), { transB });
        const scale = expected.reduce((m, v) => Math.max(m, Math.abs(v)), 1e-30);
        expect(maxRelativeError(await readF32(gpu(), ct), expected, scale)).toBeLessThan(1e-5);
        releaseTensor(gpu(), at, ct);
      }
      releaseTensor(gpu(), bt);
    },
  );
});

describe('a model quantized on load', () => {
  // The llama GGUF fixture's HF folder: hidden 256, 2 layers, vocab 280, so every matrix has rows
  // of 256 (Q4_K's block); the embedding and head (71,680 values) are not whole NF4 blocks and
  // fall back to q8_0.
  let config: ModelConfig;
  let weights: ModelWeights;
  let reference: Float32Array;
  let f32Bytes: number;
  const tokens = [1, 17, 200, 5, 99, 3, 250, 42];
  beforeAll(async () => {
    ({ config, weights } = await loadHfFolder(
      await folderFiles(`${FIXTURES}models/gguf/llama/hf`),
    ));
    const f32 = createGpuModel(gpu(), config, weights, 'f32');
    reference = await f32.forwardAll(tokens, 0);
    f32Bytes = f32.weightBytes;
    f32.dispose();
  });

  it.each([
    // [precision, dtypes by bytes, max |Δlogit| / max |logit|: measured 0.017, 0.28 and 0.25 on
    // this model of random weights, whose logits are small differences of large sums]
    ['q8_0', ['q8_0', 'f32'], 0.025],
    ['q4_k', ['q4_k', 'f32'], 0.4],
    ['nf4', ['nf4', 'q8_0', 'f32'], 0.35],
  ] as const)(
    '%s: logits near f32’s, in the memory the blocks take',
    async (precision, dtypes, tolerance) => {
      const gpuModel = adaptedGpuModel(gpu(), config, weights, precision);
      const cpuModel = adaptedCpuModel(config, weights, precision);
      try {
        expect(gpuModel.weightDTypes).toEqual(dtypes);
        const logits = await gpuModel.forwardAll(tokens, 0);
        const logitScale = reference.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        let worst = 0;
        for (let i = 0; i < logits.length; i++)
          worst = Math.max(worst, Math.abs(logits[i] - reference[i]) / logitScale);
        expect(worst).toBeLessThan(tolerance);
        expect(worst).toBeGreaterThan(0);
        // The CPU holds the dequantized values in f32: the same model, to f32 rounding.
        const cpu = await cpuModel.forwardAll(tokens, 0);
        const scale = cpu.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        expect(maxRelativeError(logits, cpu, scale)).toBeLessThan(1e-5);
        // Bytes: each matrix at its dtype's bits per weight, the norms in f32 (measured: 923,392,
        // 491,264 and 529,504 of f32's 3,462,144).
        const bits = { q8_0: 8.5, q4_k: 4.5, nf4: (8456 * 8) / 16384 };
        let expected = 0;
        for (const t of weights.values()) {
          const n = t.data.length;
          if (t.shape.length !== 2) expected += 4 * n;
          else if (precision === 'nf4' && n % 16384 !== 0) expected += (bits.q8_0 / 8) * n;
          else expected += (bits[precision] / 8) * n;
        }
        expect(gpuModel.weightBytes).toBe(expected);
        expect(gpuModel.weightBytes).toBeLessThan(f32Bytes / (precision === 'q8_0' ? 3.5 : 5));
      } finally {
        gpuModel.dispose();
      }
    },
  );

  it('q8_0 of the f32 weights is llama.cpp’s Q8_0 file: the same logits, bit for bit', async () => {
    const file = 'model-Q8_0.gguf';
    const gguf = loadGgufWeights(fixture(`models/gguf/llama/${file}`), file);
    const fromFile = createGpuModel(gpu(), gguf.config, gguf.weights, 'file');
    const quantized = createGpuModel(gpu(), config, weights, 'q8_0');
    try {
      expect(fromFile.weightDTypes).toEqual(quantized.weightDTypes);
      expect(fromFile.weightBytes).toBe(quantized.weightBytes);
      const [a, b] = [await fromFile.forwardAll(tokens, 0), await quantized.forwardAll(tokens, 0)];
      expect(bitMismatches(a, b)).toBe(0);
    } finally {
      fromFile.dispose();
      quantized.dispose();
    }
  });
});
