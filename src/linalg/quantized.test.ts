// Quantized tensors on the GPU (ggml blocks decoded by shaders/quant_<type>.wgsl) against the CPU
// decoders of src/model/gguf/quant-types.ts: widening and gathering give the same bits, matmul
// with a quantized B the f64 product of the decoded values. Blocks are random (every f16 scale
// finite, every other byte random, so every 6-bit scale packing and sign occurs) or the tensors
// llama-quantize wrote into the fixtures' GGUF models.
import { describe, expect, it } from 'vitest';
import type { Gpu } from '../gpu/device.ts';
import { run } from '../gpu/dispatch.ts';
import { floatToHalf } from '../gpu/half.ts';
import { readF32, readTensor } from '../gpu/readback.ts';
import {
  dtypeOfGgml,
  isQuantized,
  quantType,
  releaseTensor,
  uploadTensor,
  type QuantDType,
  type Tensor,
} from '../gpu/tensor.ts';
import { dequantize } from '../model/gguf/quant-types.ts';
import { readGguf } from '../model/gguf/read.ts';
import { gatherRows } from '../model/ops.ts';
import { fixture } from '../testing/fixtures.ts';
import { useGpu } from '../testing/gpu.ts';
import { randomArray, seededRandom } from '../testing/random.ts';
import { maxRelativeError } from './compare.ts';
import { matmulCpu } from './cpu/matmul.ts';
import { bOperand, matmul, matmulShape, type MatmulTile } from './matmul.ts';
import { matmulCandidates } from './matmul-tuning.ts';
import { asF32 } from './widen.ts';

const gpu = useGpu();

/**
 * Byte offsets of the f16 scales in a block (ggml-common.h's block_*): every ggml type (NF4, whose
 * scales are f32, is tested with the quantizer that makes it: src/linalg/quantize-on-load.test.ts).
 */
const HALVES: Readonly<Record<Exclude<QuantDType, 'nf4'>, readonly number[]>> = {
  q8_0: [0],
  q4_0: [0],
  q4_1: [0, 2],
  q5_0: [0],
  q5_1: [0, 2],
  q2_k: [80, 82],
  q3_k: [108],
  q4_k: [0, 2],
  q5_k: [0, 2],
  q6_k: [208],
};
const TYPES = Object.keys(HALVES) as (keyof typeof HALVES)[];

/**
 * `count` values' worth of random blocks. Scales are any finite f16 (subnormals included) or,
 * with `scale`, uniform in ±scale; every other byte is uniform.
 */
function randomBlocks(
  dtype: keyof typeof HALVES,
  count: number,
  seed: number,
  scale?: number,
): Uint8Array {
  const random = seededRandom(seed);
  const { blockSize, blockBytes } = quantType(dtype);
  const bytes = Uint8Array.from({ length: (count / blockSize) * blockBytes }, () =>
    Math.floor(random() * 256),
  );
  const view = new DataView(bytes.buffer);
  for (let at = 0; at < bytes.length; at += blockBytes) {
    for (const o of HALVES[dtype]) {
      let bits = scale ? floatToHalf((2 * random() - 1) * scale) : 0x7c00;
      // Exponent 31 is Infinity or NaN.
      while ((bits & 0x7c00) === 0x7c00) bits = Math.floor(random() * 0x10000);
      view.setUint16(at + o, bits, true);
    }
  }
  return bytes;
}

/** Where two f32 arrays differ in their bits (−0 ≠ +0), as a message naming the first. */
function bitDifference(actual: Float32Array, expected: Float32Array): string {
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const b = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  if (a.length !== b.length) return `${a.length} values, expected ${b.length}`;
  const i = a.findIndex((v, j) => v !== b[j]);
  if (i < 0) return '';
  const n = a.reduce((s, v, j) => s + Number(v !== b[j]), 0);
  return `${n} values differ, first [${i}]: ${actual[i]} vs ${expected[i]}`;
}

/** Rows `ids` of a [n × k] row-major table. */
function rowsOf(table: Float32Array, ids: Uint32Array, k: number): Float32Array {
  const out = new Float32Array(ids.length * k);
  for (const [r, id] of ids.entries()) out.set(table.subarray(id * k, (id + 1) * k), r * k);
  return out;
}

/** Relative to the largest entry of the reference: f32 accumulation over K terms. */
function relativeToScale(actual: Float32Array, expected: Float32Array): number {
  const scale = expected.reduce((m, v) => Math.max(m, Math.abs(v)), 1e-30);
  return maxRelativeError(actual, expected, scale);
}

/** Every quantized tensor of every fixture GGUF model, with its raw blocks. */
function fixtureTensors() {
  const files = ['Q2_K', 'Q3_K_M', 'Q4_0', 'Q4_1', 'Q4_K_M', 'Q5_0', 'Q5_1', 'Q5_K_M', 'Q6_K'];
  return ['llama', 'qwen2'].flatMap((model) =>
    [...files, 'Q8_0'].flatMap((q) => {
      const file = `model-${q}.gguf`;
      const gguf = readGguf(fixture(`models/gguf/${model}/${file}`), file);
      return [...gguf.tensors.values()]
        .map((info) => ({ ...info, dtype: dtypeOfGgml(info.type), where: `${model} ${file}` }))
        .filter((t): t is typeof t & { dtype: QuantDType } => isQuantized(t.dtype))
        .map((t) => ({ ...t, blocks: gguf.data(t.name) }));
    }),
  );
}

async function widened(g: Gpu, x: Tensor): Promise<Float32Array> {
  const y = await run(g, (batch) => asF32(batch, x));
  const out = await readF32(g, y);
  releaseTensor(g, y);
  return out;
}

describe('quantized tensors', () => {
  it('take their raw blocks, padded to whole words, and come back as them', async () => {
    for (const dtype of TYPES) {
      const { blockSize, blockBytes } = quantType(dtype);
      const blocks = randomBlocks(dtype, 3 * blockSize, 1);
      const t = uploadTensor(gpu(), blocks, [3, blockSize], dtype);
      expect(t.byteLength, dtype).toBe(Math.ceil((3 * blockBytes) / 4) * 4);
      expect(await readTensor(gpu(), t)).toEqual(blocks);
      releaseTensor(gpu(), t);
    }
  });

  it('refuses rows that are not whole blocks and data of the wrong size', () => {
    expect(() => uploadTensor(gpu(), new Uint8Array(34), [1, 16], 'q8_0')).toThrow(
      /q8_0\[1×16\]: rows must hold a multiple of 32 values/,
    );
    expect(() => uploadTensor(gpu(), new Uint8Array(144), [2, 256], 'q4_k', 'w')).toThrow(
      /w: q4_k\[2×256\] takes 288 bytes, not 144/,
    );
  });

  it.each(TYPES)(
    '%s: widen gives dequantize’s bits (random blocks, any finite scale)',
    async (dtype) => {
      for (const [rows, k] of [
        [1, 256],
        [3, 512],
      ]) {
        const blocks = randomBlocks(dtype, rows * k, rows * k + TYPES.indexOf(dtype));
        const t = uploadTensor(gpu(), blocks, [rows, k], dtype);
        const actual = await widened(gpu(), t);
        expect(bitDifference(actual, dequantize(quantType(dtype).name, blocks, rows * k))).toBe('');
        releaseTensor(gpu(), t);
      }
    },
  );

  it('widen gives dequantize’s bits for every quantized tensor of the fixtures', async () => {
    const seen = new Set<string>();
    for (const t of fixtureTensors()) {
      const x = uploadTensor(gpu(), t.blocks, t.shape, t.dtype, t.name);
      const actual = await widened(gpu(), x);
      const count = t.shape[0] * t.shape[1];
      const where = `${t.where} ${t.name} ${t.type}`;
      expect(bitDifference(actual, dequantize(t.type, t.blocks, count)), where).toBe('');
      releaseTensor(gpu(), x);
      seen.add(t.type);
    }
    expect([...seen].sort()).toEqual(TYPES.map((d) => d.toUpperCase()).sort());
  });

  it.each(TYPES)('%s: gather gives the decoded rows exactly', async (dtype) => {
    const [vocab, k] = [11, 512];
    const blocks = randomBlocks(dtype, vocab * k, 7 + TYPES.indexOf(dtype));
    const values = dequantize(quantType(dtype).name, blocks, vocab * k);
    const table = uploadTensor(gpu(), blocks, [vocab, k], dtype);
    const ids = Uint32Array.of(3, 0, 10, 3, 7);
    const idt = uploadTensor(gpu(), ids, [ids.length], 'u32');
    const out = await run(gpu(), (batch) => gatherRows(batch, table, idt));
    expect(out.shape).toEqual([ids.length, k]);
    expect(bitDifference(await readF32(gpu(), out), rowsOf(values, ids, k))).toBe('');
    releaseTensor(gpu(), table, idt, out);
  });

  it('gathers the fixture models’ quantized embeddings exactly', async () => {
    const embeddings = fixtureTensors().filter((t) => t.name === 'token_embd.weight');
    expect(new Set(embeddings.map((t) => t.type)).size).toBeGreaterThan(3);
    for (const t of embeddings) {
      const [vocab, k] = t.shape;
      const values = dequantize(t.type, t.blocks, vocab * k);
      const table = uploadTensor(gpu(), t.blocks, t.shape, t.dtype);
      const ids = Uint32Array.of(vocab - 1, 0, 17, 17, 200);
      const idt = uploadTensor(gpu(), ids, [ids.length], 'u32');
      const out = await run(gpu(), (batch) => gatherRows(batch, table, idt));
      const actual = await readF32(gpu(), out);
      expect(bitDifference(actual, rowsOf(values, ids, k)), `${t.where} ${t.type}`).toBe('');
      releaseTensor(gpu(), table, idt, out);
    }
  });
});

describe('matmul with a quantized B', () => {
  // W is [rows, k], quantized along k. transB: x·Wᵀ (the forward); without: g·W (the backward's
  // dx), where W's rows are the inner dimension. Shapes cover the scalar kernel (M or N not a
  // multiple of 4 where it is contiguous) and the vec4 one, with M and N off the tile sizes.
  const cases: { a: number[]; rows: number; k: number; transA?: boolean; transB: boolean }[] = [
    { a: [37, 256], rows: 29, k: 256, transB: true },
    { a: [512, 37], rows: 29, k: 512, transA: true, transB: true },
    { a: [2, 5, 512], rows: 70, k: 512, transB: true },
    { a: [37, 29], rows: 29, k: 256, transB: false },
    { a: [2, 9, 40], rows: 40, k: 512, transB: false },
  ];

  it.each(TYPES)('%s: the f64 product of the decoded values', async (dtype) => {
    // The default tile for every type; for the first, also the workgroup-memory one and
    // subgroup sharing where it fits (the tile code around b_load is the same for every B, and
    // every candidate takes minutes on SwiftShader).
    const tiles: (MatmulTile | undefined)[] = [
      undefined,
      ...(dtype === TYPES[0]
        ? [
            ...matmulCandidates(gpu()).filter((t) => t.shared),
            ...matmulCandidates(gpu())
              .filter((t) => t.subgroups)
              .slice(0, 1),
          ]
        : []),
    ];
    for (const [i, c] of cases.entries()) {
      const random = seededRandom(60 + i);
      const a = randomArray(
        random,
        c.a.reduce((x, y) => x * y, 1),
      );
      const blocks = randomBlocks(dtype, c.rows * c.k, 80 + i, 0.05);
      const w = dequantize(quantType(dtype).name, blocks, c.rows * c.k);
      const at = uploadTensor(gpu(), a, c.a, 'f32');
      const bt = uploadTensor(gpu(), blocks, [c.rows, c.k], dtype);
      const options = { transA: c.transA ?? false, transB: c.transB };
      const s = matmulShape(c.a, bt.shape, options.transA, options.transB);
      const expected = matmulCpu(a, w, s, options);
      for (const tile of tiles) {
        const ct = await run(gpu(), (batch) => matmul(batch, at, bt, { ...options, tile }));
        expect(ct.shape).toEqual(s.outShape);
        const where = `${JSON.stringify(c)} ${JSON.stringify(tile)}`;
        expect(relativeToScale(await readF32(gpu(), ct), expected), where).toBeLessThan(1e-5);
        releaseTensor(gpu(), ct);
      }
      releaseTensor(gpu(), at, bt);
    }
  });

  it('multiplies by the fixture models’ quantized weights (one tensor of each type)', async () => {
    const random = seededRandom(5);
    const seen = new Set<string>();
    const oneOfEach = fixtureTensors().filter((x) => !seen.has(x.dtype) && !!seen.add(x.dtype));
    for (const t of oneOfEach) {
      const [rows, k] = t.shape;
      const w = dequantize(t.type, t.blocks, rows * k);
      const bt = uploadTensor(gpu(), t.blocks, t.shape, t.dtype);
      for (const transB of [true, false]) {
        const aShape = transB ? [7, k] : [7, rows];
        const a = randomArray(random, aShape[0] * aShape[1]);
        const at = uploadTensor(gpu(), a, aShape, 'f32');
        const s = matmulShape(aShape, t.shape, false, transB);
        const ct = await run(gpu(), (batch) => matmul(batch, at, bt, { transB }));
        const where = `${t.where} ${t.name} ${transB ? 'x·Wᵀ' : 'g·W'}`;
        const expected = matmulCpu(a, w, s, { transB });
        expect(relativeToScale(await readF32(gpu(), ct), expected), where).toBeLessThan(1e-5);
        releaseTensor(gpu(), at, ct);
      }
      releaseTensor(gpu(), bt);
    }
  });

  it('decodes with the same files whether or not the device has shader-f16', () => {
    const withF16 = { has: { 'shader-f16': true } } as unknown as Gpu;
    const without = { has: { 'shader-f16': false } } as unknown as Gpu;
    for (const dtype of TYPES) {
      const files = { files: ['quant', `quant_${dtype}`, 'matmul_b_quant'], enables: [] };
      expect(bOperand(withF16, dtype)).toEqual(files);
      expect(bOperand(without, dtype)).toEqual(files);
    }
  });
});
