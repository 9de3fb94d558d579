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

/** The types we read, by ggml's name. */
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

export interface QuantType {
  name: GgmlType;
  /** ggml_type's value, as GGUF tensor infos store it. */
  id: number;
  /** Values per block; a row's length (ne[0]) is a multiple of it. */
  blockSize: number;
  /** Bytes per block. */
  blockBytes: number;
  /** Decodes the block at byte `at` of `view` into out[o, o + blockSize). */
  dequantizeBlock(view: DataView, at: number, out: Float32Array, o: number): void;
}

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

/** The table: every type, described once. */
export const QUANT_TYPES: Readonly<Record<GgmlType, QuantType>> = {
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
};

const BY_ID = new Map(Object.values(QUANT_TYPES).map((t) => [t.id, t]));

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
export function quantTypeById(id: number): QuantType | undefined {
  return BY_ID.get(id);
}

/** ggml's name for a type id we do not read, or undefined for an id ggml does not define. */
export function unsupportedTypeName(id: number): string | undefined {
  return OTHER_TYPES[id];
}

/** Bytes of a row of n values (n a multiple of the block size). */
export function rowBytes(type: GgmlType, n: number): number {
  const { blockSize, blockBytes } = QUANT_TYPES[type];
  if (!Number.isSafeInteger(n) || n < 0 || n % blockSize !== 0)
    throw new RangeError(`${type} holds rows of a multiple of ${blockSize} values, not ${n}`);
  return (n / blockSize) * blockBytes;
}

/**
 * `count` values from their blocks in `bytes` (exactly count / blockSize blocks): the CPU
 * reference of every kernel that reads these blocks.
 */
export function dequantize(type: GgmlType, bytes: Uint8Array, count: number): Float32Array {
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
