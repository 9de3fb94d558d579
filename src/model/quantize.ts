// Quantizing f32 weights into the quant table's block formats on the host, so a model can be
// loaded in a fraction of its f32 memory (`--weights q8_0|q4_k|nf4`): the blocks are exactly
// what the GPU decoders (shaders/quant_<type>.wgsl) and the CPU dequantizers
// (gguf/quant-types.ts) read.
//
// Q8_0 and Q4_K follow ggml's reference quantizers (ggml-quants.c quantize_row_q8_0_ref and
// quantize_row_q4_K_ref, what llama-quantize runs without an importance matrix), written from
// their math with every f32 operation rounded where C rounds it (Math.fround), so that the blocks
// equal llama.cpp's (src/model/quantize.test.ts measures how often). NF4 follows bitsandbytes'
// quantize_4bit with compress_statistics (QLoRA's double quantization).
import { floatToHalf, halfToFloat } from '../gpu/half.ts';
import { quantType, type QuantDType } from '../gpu/tensor.ts';
import {
  DYNAMIC_CODE,
  NF4_LAYOUT,
  NF4_VALUES,
  QUANT_TYPES,
  rowBytes,
  type BlockType,
} from './gguf/quant-types.ts';
import type { HostTensor } from './weights.ts';

const fround = Math.fround;

/** The block formats a model can be quantized into on load. */
export type LoadQuantType = Extract<BlockType, 'Q8_0' | 'Q4_K' | 'NF4'>;

/**
 * The blocks of `values`, a row-major tensor whose element count is whole blocks of `type` (and,
 * for Q8_0 and Q4_K, whose rows are whole blocks: blocks never straddle rows there).
 */
export function quantize(type: LoadQuantType, values: Float32Array): Uint8Array {
  const out = new Uint8Array(rowBytes(type, values.length));
  const view = new DataView(out.buffer);
  if (type === 'NF4') {
    quantizeNf4(values, view);
    return out;
  }
  const { blockSize, blockBytes } = QUANT_TYPES[type];
  const block = type === 'Q8_0' ? q8_0Block : q4KBlock;
  for (let o = 0, at = 0; o < values.length; o += blockSize, at += blockBytes)
    block(values.subarray(o, o + blockSize), view, at);
  return out;
}

/** roundf: to nearest, halves away from zero. */
function roundAway(x: number): number {
  return Math.sign(x) * Math.round(Math.abs(x));
}

/**
 * ggml's nearest_int: to nearest, halves to even (it adds 1.5·2²³ in f32). Its callers clamp the
 * result, so values beyond its ±2²² range are clamped here rather than wrapped.
 */
function nearestInt(x: number): number {
  if (!(Math.abs(x) < 4194304)) return x > 0 ? 4194304 : -4194304;
  return fround(x + 12582912) - 12582912;
}

/** Q8_0: d = max|x| / 127 (f16), q = round(x · (1/d)). */
function q8_0Block(x: Float32Array, view: DataView, at: number): void {
  let amax = 0;
  for (const v of x) amax = Math.max(amax, Math.abs(v));
  const d = fround(amax / 127);
  const id = d ? fround(1 / d) : 0;
  view.setUint16(at, floatToHalf(d), true);
  for (let j = 0; j < 32; j++) view.setInt8(at + 2 + j, roundAway(fround(x[j] * id)));
}

// Scratch space of the Q4_K quantizer (one block at a time; allocation dominated its time).
const levels = new Uint8Array(256);
const trial = new Uint8Array(32);
const weights = new Float32Array(32);
const scales = new Float32Array(8);
const mins = new Float32Array(8);
const six = new Uint8Array(16);
const packed = new Uint8Array(12);

/**
 * ggml's make_qkx2_quants for Q4_K's 32-value sub-block at x[o…] (nmax 15, rmin −1, rdelta 0.1,
 * 20 steps, squared error): the scale (returned) and min (stored as −min ≥ 0 in mins[j]) of
 * x ≈ scale·L + min minimising the weighted squared error, searched by trying 21 stretchings of
 * the range [min(x, 0), max x] and solving weighted least squares for scale and min at each
 * quantization L (written to levels[o…]).
 */
function makeQkx2(x: Float32Array, o: number, j: number): number {
  const nmax = 15;
  let min = x[o];
  let max = x[o];
  let sumW = weights[0];
  let sumX = fround(weights[0] * x[o]);
  for (let i = 1; i < 32; i++) {
    const v = x[o + i];
    if (v < min) min = v;
    if (v > max) max = v;
    sumW = fround(sumW + weights[i]);
    sumX = fround(sumX + fround(weights[i] * v));
  }
  if (min > 0) min = 0;
  if (max === min) {
    levels.fill(0, o, o + 32);
    mins[j] = -min;
    return 0;
  }
  let iscale = fround(nmax / fround(max - min));
  let scale = fround(1 / iscale);
  let best = 0;
  for (let i = 0; i < 32; i++) {
    const l = Math.max(0, Math.min(nmax, nearestInt(fround(iscale * fround(x[o + i] - min)))));
    levels[o + i] = l;
    const diff = fround(fround(fround(scale * l) + min) - x[o + i]);
    best = fround(best + fround(weights[i] * fround(diff * diff)));
  }
  // Each step stretches the range from the best min so far (ggml updates min as it goes).
  for (let step = 0; step <= 20; step++) {
    iscale = fround(fround(fround(-1 + fround(fround(0.1) * step)) + nmax) / fround(max - min));
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < 32; i++) {
      const l = Math.max(0, Math.min(nmax, nearestInt(fround(iscale * fround(x[o + i] - min)))));
      trial[i] = l;
      const wl = fround(weights[i] * l);
      sumL = fround(sumL + wl);
      sumL2 = fround(sumL2 + fround(wl * l));
      sumXL = fround(sumXL + fround(wl * x[o + i]));
    }
    const D = fround(fround(sumW * sumL2) - fround(sumL * sumL));
    if (!(D > 0)) continue;
    let thisScale = fround(fround(fround(sumW * sumXL) - fround(sumX * sumL)) / D);
    let thisMin = fround(fround(fround(sumL2 * sumX) - fround(sumL * sumXL)) / D);
    if (thisMin > 0) {
      thisMin = 0;
      thisScale = fround(sumXL / sumL2);
    }
    let error = 0;
    for (let i = 0; i < 32; i++) {
      const diff = fround(fround(fround(thisScale * trial[i]) + thisMin) - x[o + i]);
      error = fround(error + fround(weights[i] * fround(diff * diff)));
    }
    if (error < best) {
      levels.set(trial, o);
      best = error;
      scale = thisScale;
      min = thisMin;
    }
  }
  mins[j] = -min;
  return scale;
}

/**
 * Q4_K (ggml's quantize_row_q4_K_ref): per 32 values a scale and min from makeQkx2 (weights
 * √(mean x²) + |x|), those 8 pairs quantized to 6 bits against d = max scale / 63 and
 * dmin = max min / 63 (f16), then each value's nibble re-derived from the stored scale and min.
 */
function q4KBlock(x: Float32Array, view: DataView, at: number): void {
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 8; j++) {
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) sumX2 = fround(sumX2 + fround(x[32 * j + l] * x[32 * j + l]));
    const avX = fround(Math.sqrt(fround(sumX2 / 32)));
    for (let l = 0; l < 32; l++) weights[l] = avX + Math.abs(x[32 * j + l]);
    scales[j] = makeQkx2(x, 32 * j, j);
    if (scales[j] > maxScale) maxScale = scales[j];
    if (mins[j] > maxMin) maxMin = mins[j];
  }
  const invScale = maxScale > 0 ? fround(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? fround(63 / maxMin) : 0;
  // The 12 bytes of 6-bit pairs as quant-types.ts's scaleMinK4 reads them.
  packed.fill(0);
  for (let j = 0; j < 8; j++) {
    // C stores nearest_int's result in a uint8_t before clamping to 63.
    const ls = Math.min(63, nearestInt(fround(invScale * scales[j])) & 255);
    const lm = Math.min(63, nearestInt(fround(invMin * mins[j])) & 255);
    six[j] = ls;
    six[8 + j] = lm;
    if (j < 4) {
      packed[j] = ls;
      packed[j + 4] = lm;
    } else {
      packed[j + 4] = (ls & 15) | ((lm & 15) << 4);
      packed[j - 4] |= (ls >> 4) << 6;
      packed[j] |= (lm >> 4) << 6;
    }
  }
  const dBits = floatToHalf(fround(maxScale / 63));
  const dminBits = floatToHalf(fround(maxMin / 63));
  view.setUint16(at, dBits, true);
  view.setUint16(at + 2, dminBits, true);
  for (let i = 0; i < 12; i++) view.setUint8(at + 4 + i, packed[i]);
  for (let j = 0; j < 8; j++) {
    const d = fround(halfToFloat(dBits) * six[j]);
    // A sub-block whose scale stored as 0 keeps makeQkx2's levels (they decode to −min anyway).
    if (!d) continue;
    const dm = fround(halfToFloat(dminBits) * six[8 + j]);
    for (let l = 0; l < 32; l++) {
      const q = nearestInt(fround(fround(x[32 * j + l] + dm) / d));
      levels[32 * j + l] = Math.max(0, Math.min(15, q));
    }
  }
  // Sub-blocks 2c and 2c + 1 share 32 bytes: low nibbles, then high.
  for (let c = 0; c < 4; c++)
    for (let l = 0; l < 32; l++)
      view.setUint8(at + 16 + 32 * c + l, levels[64 * c + l] | (levels[64 * c + 32 + l] << 4));
}

/** Index of the entry of a sorted code nearest to x (the lower one on a tie). */
function nearestCode(code: Float32Array, x: number): number {
  let lo = 0;
  let hi = code.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (code[mid] <= x) lo = mid;
    else hi = mid;
  }
  return Math.abs(code[hi] - x) < Math.abs(x - code[lo]) ? hi : lo;
}

const SCALE_BLOCK = 64;
const GROUP = 256;

/**
 * NF4 with double quantization, as bitsandbytes' quantize_4bit(blocksize=64, quant_type='nf4',
 * compress_statistics=True) computes it: per 64 values absmax = max|x| and each value's nearest
 * NF4 level of x · (1/absmax); then the absmax values less their mean m (the offset) are
 * quantized blockwise by 256 into DYNAMIC_CODE against s = their largest magnitude. The layout
 * is QUANT_TYPES.NF4's. The mean is summed in f64 (torch sums f32 pairwise; the two can differ in
 * the last bit, which only moves where the absmax values are centred).
 */
function quantizeNf4(x: Float32Array, view: DataView): void {
  const blocks = x.length / SCALE_BLOCK;
  const absmax = new Float32Array(blocks);
  let sum = 0;
  for (let b = 0; b < blocks; b++) {
    let a = 0;
    for (let i = b * SCALE_BLOCK; i < (b + 1) * SCALE_BLOCK; i++) a = Math.max(a, Math.abs(x[i]));
    absmax[b] = a;
    sum += a;
  }
  const offset = fround(sum / blocks);
  const { blockBytes } = QUANT_TYPES.NF4;
  for (let g = 0; g < blocks / GROUP; g++) {
    const at = g * blockBytes;
    const centred = absmax.subarray(g * GROUP, (g + 1) * GROUP).map((a) => fround(a - offset));
    const s = centred.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    view.setFloat32(at + NF4_LAYOUT.scale, s, true);
    view.setFloat32(at + NF4_LAYOUT.offset, offset, true);
    for (let b = 0; b < GROUP; b++) {
      view.setUint8(
        at + NF4_LAYOUT.codes + b,
        nearestCode(DYNAMIC_CODE, s ? fround(centred[b] / s) : 0),
      );
      const a = absmax[g * GROUP + b];
      const inverse = fround(1 / a);
      const first = (g * GROUP + b) * SCALE_BLOCK;
      for (let k = 0; k < SCALE_BLOCK; k += 2) {
        // An all-zero block: every value is NF4's exact 0.
        const hi = a ? nearestCode(NF4_VALUES, fround(x[first + k] * inverse)) : 7;
        const lo = a ? nearestCode(NF4_VALUES, fround(x[first + k + 1] * inverse)) : 7;
        view.setUint8(at + NF4_LAYOUT.nibbles + (b * SCALE_BLOCK + k) / 2, (hi << 4) | lo);
      }
    }
  }
}

/**
 * A weight's blocks in a quantized dtype: a GGUF file's own where they are of that type (the
 * file's exact values), else its values quantized now (only Q8_0, Q4_K and NF4 are made here).
 */
export function blocksOf(t: HostTensor, dtype: QuantDType): Uint8Array {
  const type = quantType(dtype).name;
  if (t.quantized?.type === type) return t.quantized.blocks;
  if (type !== 'Q8_0' && type !== 'Q4_K' && type !== 'NF4')
    throw new Error(`${type} blocks come only from a GGUF file; this weight has none`);
  return quantize(type, t.data);
}
