// The quantizers of quantize-on-load against their definitions: Q8_0 and Q4_K against the blocks
// llama.cpp's llama-quantize wrote into the fixtures' GGUF models (same weights, in model-f32.gguf),
// NF4 against QLoRA's definition of the code book and the error bound its scales imply, and the
// shader's copy of NF4's tables against the CPU's.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fixture } from '../testing/fixtures.ts';
import { randomArray, seededRandom } from '../testing/random.ts';
import {
  DYNAMIC_CODE,
  NF4_VALUES,
  QUANT_TYPES,
  dequantize,
  type BlockType,
} from './gguf/quant-types.ts';
import { readGguf } from './gguf/read.ts';
import { blocksOf, quantize } from './quantize.ts';
import { gpuDType, type HostTensor } from './weights.ts';

/** Every tensor of `type` in a fixture's quantized file, with the f32 file's values of it. */
function llamaCppTensors(model: string, file: string, type: BlockType) {
  const read = (name: string) => readGguf(fixture(`models/gguf/${model}/${name}`), name);
  const f32 = read('model-f32.gguf');
  const quantized = read(file);
  return [...quantized.tensors.values()]
    .filter((info) => info.type === type)
    .map((info) => {
      const raw = f32.data(info.name);
      const values = new Float32Array(raw.slice().buffer);
      return { name: info.name, values, blocks: quantized.data(info.name) };
    });
}

describe('Q8_0 and Q4_K blocks equal llama.cpp’s', () => {
  // Measured: every block of every such tensor identical (llama: 16 Q8_0 tensors, 27,008
  // blocks, 13 Q4_K tensors, 2,776 blocks; qwen2: 8 and 14,528, 5 and 1,152).
  it.each([
    ['llama', 'model-Q8_0.gguf', 'Q8_0'],
    ['qwen2', 'model-Q8_0.gguf', 'Q8_0'],
    ['llama', 'model-Q4_K_M.gguf', 'Q4_K'],
    ['qwen2', 'model-Q4_K_M.gguf', 'Q4_K'],
  ] as const)('%s %s: every %s tensor, bit for bit', (model, file, type) => {
    const tensors = llamaCppTensors(model, file, type);
    expect(tensors.length).toBeGreaterThan(4);
    const { blockBytes } = QUANT_TYPES[type];
    for (const t of tensors) {
      const mine = quantize(type, t.values);
      expect(mine.length, t.name).toBe(t.blocks.length);
      const differing = [];
      for (let at = 0; at < mine.length; at += blockBytes)
        if (mine.subarray(at, at + blockBytes).some((b, k) => b !== t.blocks[at + k]))
          differing.push(at / blockBytes);
      expect(differing, t.name).toEqual([]);
    }
  });

  it('Q8_0: zeros, ±max and halves round as ggml rounds (roundf: away from zero)', () => {
    const x = new Float32Array(32);
    x[0] = 127;
    x[1] = -127;
    x[2] = 2.5;
    x[3] = -2.5;
    const blocks = quantize('Q8_0', x);
    expect(new DataView(blocks.buffer).getUint16(0, true)).toBe(0x3c00); // d = 1
    expect([...new Int8Array(blocks.buffer, 2, 5)]).toEqual([127, -127, 3, -3, 0]);
    expect(dequantize('Q8_0', quantize('Q8_0', new Float32Array(32)), 32)).toEqual(
      new Float32Array(32),
    );
  });
});

/** Φ⁻¹, the standard normal quantile (Acklam's rational approximation, relative error < 1.2e-9). */
function normalQuantile(p: number): number {
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269];
  const a4 = -30.66479806614716;
  const a5 = 2.506628274631;
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972];
  const b4 = -13.28068155288572;
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734];
  const c4 = 4.374664141464968;
  const c5 = 2.938163982698783;
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const tail = (q: number) =>
    (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c4) * q + c5) /
    ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  if (p < 0.02425) return tail(Math.sqrt(-2 * Math.log(p)));
  if (p > 1 - 0.02425) return -tail(Math.sqrt(-2 * Math.log(1 - p)));
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a4) * r + a5) * q) /
    (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b4) * r + 1)
  );
}

describe('NF4', () => {
  it('its code book is QLoRA’s: normal quantiles at equal steps from δ to ½, normalised', () => {
    // QLoRA §3 / bitsandbytes create_normal_map(offset=0.9677083): 8 positive levels from the
    // quantiles at 8 equal steps from δ down towards ½, 7 negative ones likewise, and 0.
    const delta = 0.9677083;
    const steps = (n: number) =>
      Array.from({ length: n - 1 }, (_, i) => delta - (i * (delta - 0.5)) / (n - 1));
    const positive = steps(9).map(normalQuantile);
    const negative = steps(8).map((p) => -normalQuantile(p));
    const max = Math.max(...positive);
    const levels = [...positive, ...negative, 0].map((v) => v / max).sort((x, y) => x - y);
    for (const [i, v] of levels.entries()) expect(NF4_VALUES[i]).toBeCloseTo(v, 6);
  });

  it('its absmax code is bitsandbytes’ dynamic map: 256 sorted levels from −0.993 to 1', () => {
    expect(DYNAMIC_CODE.length).toBe(256);
    expect([...DYNAMIC_CODE]).toEqual([...DYNAMIC_CODE].sort((x, y) => x - y));
    expect(DYNAMIC_CODE[255]).toBe(1);
    expect(DYNAMIC_CODE.filter((v) => v === 0).length).toBe(1);
    // Finest near 0 (5.5e-7), 2^e levels per decade e − 6.
    expect(DYNAMIC_CODE[128]).toBeCloseTo(5.5e-7, 12);
    expect(DYNAMIC_CODE[0]).toBe(Math.fround(-0.99296875));
  });

  it('the shader holds the same tables, bit for bit', () => {
    const source = readFileSync(new URL('../../shaders/quant_nf4.wgsl', import.meta.url), 'utf8');
    const table = (name: string) =>
      Float32Array.from(
        source
          .split(`const ${name} = array<f32, `)[1]
          .split(');')[0]
          .replace(/^\d+>\(/, '')
          .split(',')
          .map((v) => v.trim())
          .filter(Boolean)
          .map(Number),
      );
    expect(table('NF4_VALUES')).toEqual(NF4_VALUES);
    expect(table('DYNAMIC_CODE')).toEqual(DYNAMIC_CODE);
  });

  it('quantize → dequantize: within half a code step of each block’s scales', () => {
    const random = seededRandom(5);
    const n = 3 * 16384;
    // Normal-ish weights with blocks of very different scales and one all-zero block.
    const x = randomArray(random, n).map(
      (v, i) => v * 0.02 * (1 + 9 * ((i >> 6) % 7 === 0 ? 1 : 0)),
    );
    x.fill(0, 640, 704);
    x[4097] = 0.5 * (random() + 1);
    const blocks = quantize('NF4', x);
    expect(blocks.length).toBe(3 * QUANT_TYPES.NF4.blockBytes);
    const y = dequantize('NF4', blocks, n);
    // NF4's widest gap is −0.6961928 − (−1) (half: 0.15190); the dynamic code's 0.0140625 (half
    // 0.00703), in units of the group's scale s.
    const view = new DataView(blocks.buffer);
    let worst = 0;
    for (let b = 0; b < n / 64; b++) {
      const group = Math.floor(b / 256) * QUANT_TYPES.NF4.blockBytes;
      const s = view.getFloat32(group, true);
      let absmax = 0;
      for (let i = 64 * b; i < 64 * b + 64; i++) absmax = Math.max(absmax, Math.abs(x[i]));
      const bound = 0.1519 * absmax + 0.00704 * s + 1e-7;
      for (let i = 64 * b; i < 64 * b + 64; i++) {
        expect(Math.abs(y[i] - x[i]), `value ${i}`).toBeLessThanOrEqual(bound);
        worst = Math.max(worst, Math.abs(y[i] - x[i]) / bound);
      }
    }
    expect(worst).toBeGreaterThan(0.5); // the bound is not loose by orders of magnitude
    expect(y.subarray(640, 704)).toEqual(new Float32Array(64));
  });

  it('each value takes the NF4 level nearest to it relative to its block’s absmax', () => {
    const x = randomArray(seededRandom(3), 16384);
    const blocks = quantize('NF4', x);
    for (let i = 0; i < 16384; i += 37) {
      const b = Math.floor(i / 64);
      let absmax = 0;
      for (let k = 64 * b; k < 64 * b + 64; k++) absmax = Math.max(absmax, Math.abs(x[k]));
      const q = (blocks[264 + (i >> 1)] >> (i % 2 ? 0 : 4)) & 15;
      const r = x[i] / absmax;
      const best = Math.min(...[...NF4_VALUES].map((v) => Math.abs(v - r)));
      expect(Math.abs(NF4_VALUES[q] - r)).toBeCloseTo(best, 6);
    }
  });
});

describe('gpuDType of a quantized precision', () => {
  const matrix = (rows: number, cols: number): HostTensor => ({
    shape: [rows, cols],
    data: new Float32Array(rows * cols),
  });
  it.each([
    // [rows, cols, precision, dtype]: Q4_K needs rows of 256, NF4 rows of 64 and whole blocks of
    // 16,384 values, both falling back to q8_0 (rows of 32), q8_0 to f16.
    [2048, 2048, 'q4_k', 'q4_k'],
    [768, 768, 'q4_k', 'q4_k'],
    [576, 576, 'q4_k', 'q8_0'],
    [64, 64, 'q4_k', 'q8_0'],
    [10, 48, 'q4_k', 'f16'],
    [2048, 2048, 'nf4', 'nf4'],
    [768, 768, 'nf4', 'nf4'],
    [64, 64, 'nf4', 'q8_0'],
    [64, 48, 'q8_0', 'f16'],
    [280, 256, 'q8_0', 'q8_0'],
  ] as const)('[%i × %i] at %s: %s', (rows, cols, precision, dtype) => {
    expect(gpuDType(matrix(rows, cols), precision)).toBe(dtype);
  });

  it('norms and other vectors stay f32', () => {
    expect(gpuDType({ shape: [256], data: new Float32Array(256) }, 'q8_0')).toBe('f32');
  });

  it('keeps the blocks a GGUF file holds in that type, and quantizes those of another', () => {
    const [t] = llamaCppTensors('llama', 'model-Q4_K_M.gguf', 'Q4_K');
    const count = t.values.length;
    const host: HostTensor = {
      shape: [count / 256, 256],
      data: dequantize('Q4_K', t.blocks, count),
      quantized: { type: 'Q4_K', blocks: t.blocks },
    };
    expect(blocksOf(host, 'q4_k')).toBe(t.blocks);
    expect(blocksOf(host, 'q8_0')).toEqual(quantize('Q8_0', host.data));
  });
});
