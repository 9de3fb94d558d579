// The ggml tensor types a GGUF model can hold, one entry each: ggml's type id (ggml.h's
// ggml_type), how many values a block holds, its bytes, and how a block becomes f32 values. The
// reader (read.ts) sizes and refuses tensors by this table; `dequantize` is the CPU reference
// that GPU kernels reading the raw blocks are tested against.
//
// Block layouts are ggml's (ggml-common.h's block_q4_0 … block_q6_K) and the arithmetic is that of
// gguf-py's dequantizers (gguf/quants.py, which llama.cpp's dequantize_row_* in ggml-quants.c
// match bit for bit on the fixtures): numpy computes in f32, so every product and sum here is
// rounded to f32 where numpy rounds it (Math.fround; a Float32Array store rounds the last one).
// A sum or product of two f32s computed in f64 and then rounded to f32 is the f32 result (53 bits
// are more than twice 24 plus 2), so the values are bit-exact.
// Notation: d, dmin, m are f16 scales; q a quant; a K-quant super-block holds 256 values (QK_K) in
// sub-blocks of 16 or 32 that each have their own scale (and min).
import { bf16ToFloat, halfToFloat } from '../../gpu/half.ts';

/** The ggml types we read, by ggml's name. */
export type GgmlType =
  | 'F32'
  | 'F16'
  | 'BF16'
  | 'Q8_0'
  | 'Q4_0'
  | 'Q4_1'
  | 'Q5_0'
  | 'Q5_1'
  | 'Q2_K'
  | 'Q3_K'
  | 'Q4_K'
  | 'Q5_K'
  | 'Q6_K';

/**
 * Every block format the engine decodes: ggml's, and bitsandbytes' NF4 (QLoRA's 4-bit
 * NormalFloat with double-quantized scales), which only quantization on load produces (no GGUF
 * file holds it, so it has no ggml id).
 */
export type BlockType = GgmlType | 'NF4';

export interface QuantType {
  name: BlockType;
  /** ggml_type's value, as GGUF tensor infos store it; none for a type ggml does not define. */
  id?: number;
  /** Values per block; a row's length (ne[0]) is a multiple of it unless rowMultiple says less. */
  blockSize: number;
  /** Bytes per block. */
  blockBytes: number;
  /**
   * For a block that spans rows (NF4's 16,384 values: 256 scale blocks of 64 sharing their
   * second-level scale), what a row's length must be a multiple of; the tensor as a whole still
   * holds whole blocks (its element i is value i mod blockSize of block ⌊i / blockSize⌋).
   */
  rowMultiple?: number;
  /** Decodes the block at byte `at` of `view` into out[o, o + blockSize). */
  dequantizeBlock(view: DataView, at: number, out: Float32Array, o: number): void;
}

/** A type of ggml's: one a GGUF file can hold. */
export type GgmlQuantType = QuantType & { name: GgmlType; id: number };

const fround = Math.fround;

let halves: Float32Array | undefined;

/** The f16 at byte `at` as f32 (exact), from a table built on first use. */
function half(view: DataView, at: number): number {
  halves ??= Float32Array.from({ length: 0x10000 }, (_, h) => halfToFloat(h));
  return halves[view.getUint16(at, true)];
}

/**
 * The 6-bit scale and min of sub-block j (0–7) of a Q4_K/Q5_K block from its 12 packed bytes at
 * `at`: j < 4 in the low 6 bits of bytes j (scale) and j + 4 (min); j ≥ 4 takes its low 4 bits
 * from byte j + 4 (scale: low nibble, min: high nibble) and its high 2 from the top bits of bytes
 * j − 4 (scale) and j (min). (ggml-quants.c get_scale_min_k4.)
 */
function scaleMinK4(view: DataView, at: number, j: number): [number, number] {
  const b = (i: number) => view.getUint8(at + i);
  if (j < 4) return [b(j) & 63, b(j + 4) & 63];
  return [(b(j + 4) & 15) | ((b(j - 4) >> 6) << 4), (b(j + 4) >> 4) | ((b(j) >> 6) << 4)];
}

/**
 * The Q4_0/Q4_1/Q5_0/Q5_1 decoder: d, then m where the type has a min, then a u32 of fifth bits
 * (bit j is value j's) where it has 5 bits, then 16 bytes whose byte j holds value j in its low
 * nibble and value j + 16 in its high one.
 */
function legacyBlock(min: boolean, fifth: boolean): QuantType['dequantizeBlock'] {
  // Without a min the quants are centred on 8 / 16 (and nothing is added: adding 0 would turn a
  // −0 into +0 where numpy keeps it).
  const centre = fifth ? 16 : 8;
  return (view, at, out, o) => {
    const d = half(view, at);
    let p = at + 2;
    const m = min ? half(view, p) : 0;
    if (min) p += 2;
    const qh = fifth ? view.getUint32(p, true) : 0;
    if (fifth) p += 4;
    for (let j = 0; j < 16; j++) {
      const byte = view.getUint8(p + j);
      const lo = (byte & 15) | (((qh >>> j) & 1) << 4);
      const hi = (byte >> 4) | (((qh >>> (j + 16)) & 1) << 4);
      if (min) {
        out[o + j] = fround(d * lo) + m;
        out[o + j + 16] = fround(d * hi) + m;
      } else {
        out[o + j] = d * (lo - centre);
        out[o + j + 16] = d * (hi - centre);
      }
    }
  };
}

/**
 * The Q4_K/Q5_K decoder: d, dmin, 12 bytes of 6-bit scales and mins per 32 values, Q5_K's 32
 * bytes of fifth bits, 128 bytes of nibbles: (d·scale)·q − dmin·min. Sub-block j's value l is
 * nibble j & 1 of byte 32·(j >> 1) + l, with bit j of byte l as its fifth bit.
 */
function kQuant(fifth: boolean): QuantType['dequantizeBlock'] {
  const nibbles = fifth ? 48 : 16;
  return (view, at, out, o) => {
    const d = half(view, at);
    const dmin = half(view, at + 2);
    for (let j = 0; j < 8; j++) {
      const [sc, m] = scaleMinK4(view, at + 4, j);
      const dl = fround(d * sc);
      const ml = fround(dmin * m);
      const p = at + nibbles + 32 * (j >> 1);
      const shift = 4 * (j & 1);
      for (let l = 0; l < 32; l++) {
        const high = fifth ? ((view.getUint8(at + 16 + l) >> j) & 1) << 4 : 0;
        out[o + 32 * j + l] = fround(dl * (((view.getUint8(p + l) >> shift) & 15) | high)) - ml;
      }
    }
  };
}

/**
 * NF4's 16 values (QLoRA, Dettmers et al. 2023, §3 "4-bit NormalFloat"; bitsandbytes'
 * create_normal_map): quantiles of a standard normal chosen so that each of the 4-bit bins holds
 * an equal share of N(0, 1), one side with 8 and the other with 7 non-zero levels so that 0 is
 * exact, normalised to [−1, 1]. As f32, the values bitsandbytes' kernels hold.
 */
export const NF4_VALUES: Float32Array = Float32Array.of(
  -1.0,
  -0.6961928009986877,
  -0.5250730514526367,
  -0.39491748809814453,
  -0.28444138169288635,
  -0.18477343022823334,
  -0.09105003625154495,
  0.0,
  0.07958029955625534,
  0.16093020141124725,
  0.24611230194568634,
  0.33791524171829224,
  0.44070982933044434,
  0.5626170039176941,
  0.7229568362236023,
  1.0,
);

/**
 * bitsandbytes' 8-bit "dynamic" code (create_dynamic_map(signed=True), Dettmers 2015's dynamic
 * tree quantization) that double quantization stores NF4's per-block absmax values in: for
 * e = 0…6, 2^e levels at 10^(e−6) × the midpoints of 2^e equal steps over [0.1, 1], both signs,
 * plus 0 and 1, sorted. Computed in f32 as torch computes it (linspace's two-sided formula, then
 * the midpoints, then the scale rounded to f32 and multiplied).
 */
export const DYNAMIC_CODE: Float32Array = (() => {
  const values: number[] = [0, 1];
  for (let e = 0; e < 7; e++) {
    const n = 2 ** e + 1;
    const start = fround(0.1);
    const step = fround((1 - start) / (n - 1));
    const at = (i: number) =>
      i < n >> 1 ? fround(start + fround(step * i)) : fround(1 - fround(step * (n - 1 - i)));
    const scale = fround(10 ** (e - 6));
    for (let i = 0; i + 1 < n; i++) {
      const mean = fround(fround(at(i) + at(i + 1)) / 2);
      values.push(fround(scale * mean), -fround(scale * mean));
    }
  }
  return Float32Array.from(values).sort();
})();

/** NF4's block: 256 scale blocks of 64 values (bitsandbytes' defaults), see QUANT_TYPES.NF4. */
const NF4_SCALE_BLOCK = 64;
const NF4_GROUP = 256;
/** Where a NF4 block's parts start: f32 scale, f32 offset, 256 absmax codes, then the nibbles. */
export const NF4_LAYOUT = { scale: 0, offset: 4, codes: 8, nibbles: 8 + NF4_GROUP } as const;

/** The table: every type, described once. */
export const QUANT_TYPES: Readonly<Record<GgmlType, GgmlQuantType> & Record<'NF4', QuantType>> = {
  F32: {
    name: 'F32',
    id: 0,
    blockSize: 1,
    blockBytes: 4,
    dequantizeBlock: (view, at, out, o) => {
      out[o] = view.getFloat32(at, true);
    },
  },
  F16: {
    name: 'F16',
    id: 1,
    blockSize: 1,
    blockBytes: 2,
    dequantizeBlock: (view, at, out, o) => {
      out[o] = half(view, at);
    },
  },
  BF16: {
    name: 'BF16',
    id: 30,
    blockSize: 1,
    blockBytes: 2,
    // The top half of an f32.
    dequantizeBlock: (view, at, out, o) => {
      out[o] = bf16ToFloat(view.getUint16(at, true));
    },
  },
  Q8_0: {
    name: 'Q8_0',
    id: 8,
    blockSize: 32,
    blockBytes: 34,
    // d, then 32 signed bytes: q·d.
    dequantizeBlock: (view, at, out, o) => {
      const d = half(view, at);
      for (let j = 0; j < 32; j++) out[o + j] = view.getInt8(at + 2 + j) * d;
    },
  },
  Q4_0: {
    name: 'Q4_0',
    id: 2,
    blockSize: 32,
    blockBytes: 18,
    // d, 16 bytes of nibbles: (q − 8)·d.
    dequantizeBlock: legacyBlock(false, false),
  },
  Q4_1: {
    name: 'Q4_1',
    id: 3,
    blockSize: 32,
    blockBytes: 20,
    // d, m, 16 bytes of nibbles: q·d + m.
    dequantizeBlock: legacyBlock(true, false),
  },
  Q5_0: {
    name: 'Q5_0',
    id: 6,
    blockSize: 32,
    blockBytes: 22,
    // d, a u32 of fifth bits, 16 bytes of nibbles: (q − 16)·d.
    dequantizeBlock: legacyBlock(false, true),
  },
  Q5_1: {
    name: 'Q5_1',
    id: 7,
    blockSize: 32,
    blockBytes: 24,
    // d, m, a u32 of fifth bits, 16 bytes of nibbles: q·d + m.
    dequantizeBlock: legacyBlock(true, true),
  },
  Q2_K: {
    name: 'Q2_K',
    id: 10,
    blockSize: 256,
    blockBytes: 84,
    // 16 bytes of 4-bit scale (low) and min (high) per 16 values, 64 bytes of 2-bit quants, d,
    // dmin: (d·scale)·q − dmin·min. Value 128h + 32s + l is bits 2s of byte 32h + l.
    dequantizeBlock: (view, at, out, o) => {
      const d = half(view, at + 80);
      const dmin = half(view, at + 82);
      for (let sub = 0; sub < 16; sub++) {
        const sc = view.getUint8(at + sub);
        const dl = fround(d * (sc & 15));
        const ml = fround(dmin * (sc >> 4));
        for (let k = 0; k < 16; k++) {
          const e = sub * 16 + k;
          const q = (view.getUint8(at + 16 + (e >> 7) * 32 + (e & 31)) >> (2 * ((e >> 5) & 3))) & 3;
          out[o + e] = fround(dl * q) - ml;
        }
      }
    },
  },
  Q3_K: {
    name: 'Q3_K',
    id: 11,
    blockSize: 256,
    blockBytes: 110,
    // 32 bytes of high bits, 64 bytes of 2-bit quants, 12 bytes of 6-bit signed scales (offset 32)
    // per 16 values, d: (d·scale)·(q − 4 where the high bit is clear). Value e's low bits are
    // placed as in Q2_K, its high bit is bit e >> 5 of byte e & 31. Scale i's low 4 bits are the
    // low (i < 8) or high nibble of byte i mod 8, its high 2 bits bits 2·(i >> 2) of byte
    // 8 + i mod 4.
    dequantizeBlock: (view, at, out, o) => {
      const d = half(view, at + 108);
      for (let sub = 0; sub < 16; sub++) {
        const low = (view.getUint8(at + 96 + (sub & 7)) >> (sub < 8 ? 0 : 4)) & 15;
        const high = (view.getUint8(at + 104 + (sub & 3)) >> (2 * (sub >> 2))) & 3;
        const dl = fround(d * ((low | (high << 4)) - 32));
        for (let k = 0; k < 16; k++) {
          const e = sub * 16 + k;
          const bits =
            (view.getUint8(at + 32 + (e >> 7) * 32 + (e & 31)) >> (2 * ((e >> 5) & 3))) & 3;
          const set = (view.getUint8(at + (e & 31)) >> (e >> 5)) & 1;
          out[o + e] = dl * (bits - (set ? 0 : 4));
        }
      }
    },
  },
  Q4_K: {
    name: 'Q4_K',
    id: 12,
    blockSize: 256,
    blockBytes: 144,
    dequantizeBlock: kQuant(false),
  },
  Q5_K: {
    name: 'Q5_K',
    id: 13,
    blockSize: 256,
    blockBytes: 176,
    dequantizeBlock: kQuant(true),
  },
  Q6_K: {
    name: 'Q6_K',
    id: 14,
    blockSize: 256,
    blockBytes: 210,
    // 128 bytes of low nibbles, 64 bytes of high 2-bit pairs, 16 signed scales per 16 values, d:
    // (d·scale)·(q − 32). In each half h of 128 values, value r takes nibble r >> 6 of byte
    // 64h + (r & 63) and bits 2·(r >> 5) of byte 32h + (r & 31) above it.
    dequantizeBlock: (view, at, out, o) => {
      const d = half(view, at + 208);
      for (let sub = 0; sub < 16; sub++) {
        const dl = fround(d * view.getInt8(at + 192 + sub));
        for (let k = 0; k < 16; k++) {
          const e = sub * 16 + k;
          const h = e >> 7;
          const r = e & 127;
          const low = (view.getUint8(at + 64 * h + (r & 63)) >> (4 * (r >> 6))) & 15;
          const high = (view.getUint8(at + 128 + 32 * h + (r & 31)) >> (2 * (r >> 5))) & 3;
          out[o + e] = dl * ((low | (high << 4)) - 32);
        }
      }
    },
  },
  NF4: {
    name: 'NF4',
    blockSize: NF4_SCALE_BLOCK * NF4_GROUP,
    blockBytes: NF4_LAYOUT.nibbles + (NF4_SCALE_BLOCK * NF4_GROUP) / 2,
    rowMultiple: NF4_SCALE_BLOCK,
    // bitsandbytes' quantize_4bit(blocksize=64, quant_type='nf4', compress_statistics=True) laid
    // out as blocks that decode on their own: an f32 scale s and the tensor's mean absmax m (the
    // offset; the same in every block), then per 64 values the code c of its absmax − m in
    // DYNAMIC_CODE, then the 4-bit indices into NF4_VALUES, two a byte, the first in the high
    // nibble. absmax = code[c]·s + m, value = NF4[q]·absmax, in f32 as bitsandbytes computes.
    dequantizeBlock: (view, at, out, o) => {
      const s = view.getFloat32(at + NF4_LAYOUT.scale, true);
      const m = view.getFloat32(at + NF4_LAYOUT.offset, true);
      for (let b = 0; b < NF4_GROUP; b++) {
        const absmax = fround(
          fround(DYNAMIC_CODE[view.getUint8(at + NF4_LAYOUT.codes + b)] * s) + m,
        );
        const p = at + NF4_LAYOUT.nibbles + (b * NF4_SCALE_BLOCK) / 2;
        for (let k = 0; k < NF4_SCALE_BLOCK / 2; k++) {
          const byte = view.getUint8(p + k);
          out[o + b * NF4_SCALE_BLOCK + 2 * k] = NF4_VALUES[byte >> 4] * absmax;
          out[o + b * NF4_SCALE_BLOCK + 2 * k + 1] = NF4_VALUES[byte & 15] * absmax;
        }
      }
    },
  },
};

/** The table's ggml types, those a GGUF file can hold. */
export const GGML_TYPES: readonly GgmlQuantType[] = Object.values(QUANT_TYPES).filter(
  (t): t is GgmlQuantType => t.id !== undefined,
);

const BY_ID = new Map(GGML_TYPES.map((t) => [t.id, t]));

/**
 * ggml's other types (ggml.h), named so that a file holding one is refused by name. Ids 4, 5,
 * 31–33 and 36–38 are retired layouts that no current file holds.
 */
const OTHER_TYPES: Readonly<Record<number, string>> = {
  9: 'Q8_1',
  15: 'Q8_K',
  16: 'IQ2_XXS',
  17: 'IQ2_XS',
  18: 'IQ3_XXS',
  19: 'IQ1_S',
  20: 'IQ4_NL',
  21: 'IQ3_S',
  22: 'IQ2_S',
  23: 'IQ4_XS',
  24: 'I8',
  25: 'I16',
  26: 'I32',
  27: 'I64',
  28: 'F64',
  29: 'IQ1_M',
  34: 'TQ1_0',
  35: 'TQ2_0',
  39: 'MXFP4',
};

/** The table's entry for a ggml type id, or undefined for a type we do not read. */
export function quantTypeById(id: number): GgmlQuantType | undefined {
  return BY_ID.get(id);
}

/** ggml's name for a type id we do not read, or undefined for an id ggml does not define. */
export function unsupportedTypeName(id: number): string | undefined {
  return OTHER_TYPES[id];
}

/** Bytes of a row of n values (n a multiple of the block size). */
export function rowBytes(type: BlockType, n: number): number {
  const { blockSize, blockBytes } = QUANT_TYPES[type];
  if (!Number.isSafeInteger(n) || n < 0 || n % blockSize !== 0)
    throw new RangeError(`${type} holds rows of a multiple of ${blockSize} values, not ${n}`);
  return (n / blockSize) * blockBytes;
}

/**
 * `count` values from their blocks in `bytes` (exactly count / blockSize blocks): the CPU
 * reference of every kernel that reads these blocks.
 */
export function dequantize(type: BlockType, bytes: Uint8Array, count: number): Float32Array {
  const quant = QUANT_TYPES[type];
  const size = rowBytes(type, count);
  if (bytes.byteLength !== size)
    throw new RangeError(
      `${count} ${type} values take ${size} bytes, but ${bytes.byteLength} were given`,
    );
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(count);
  for (let b = 0, o = 0; o < count; b += quant.blockBytes, o += quant.blockSize)
    quant.dequantizeBlock(view, b, out, o);
  return out;
}
