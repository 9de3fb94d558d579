// The two 16-bit float formats models ship in, as raw bits: IEEE binary16 ("f16") and bfloat16
// (the top half of an f32). Weights stored this way on the GPU take half the memory of f32 and
// are widened to f32 as the kernels read them (shaders/matmul_b_*.wgsl, shaders/convert.wgsl).

export type HalfDType = 'f16' | 'bf16';

/** IEEE 754 half (binary16) bits to a number, subnormals, infinities and NaN included. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * A number to half bits, rounded to nearest even (as Math.fround does for f32): beyond the
 * largest half (65504) it becomes ±Infinity, below the smallest subnormal ±0; NaN stays NaN.
 */
export function floatToHalf(x: number): number {
  f32[0] = x;
  const bits = u32[0];
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const fraction = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (fraction ? 0x200 : 0);
  // Rounded as an integer count of the half's ulp (2⁻²⁴ for subnormals): a carry out of the
  // fraction correctly bumps the exponent, up to Infinity.
  const e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) return e < -10 ? sign : sign | roundShift(fraction | 0x800000, 14 - e);
  return sign | ((e << 10) + roundShift(fraction, 13));
}

/** bfloat16 bits to a number (exact). */
export function bf16ToFloat(h: number): number {
  u32[0] = h << 16;
  return f32[0];
}

/** A number to bfloat16 bits, rounded to nearest even; NaN stays NaN. */
export function floatToBf16(x: number): number {
  f32[0] = x;
  const bits = u32[0];
  if ((bits & 0x7f800000) === 0x7f800000 && bits & 0x7fffff) return (bits >>> 16) | 0x40;
  return roundShift(bits, 16) & 0xffff;
}

/** value / 2^shift rounded to nearest, ties to even (value < 2³², 1 ≤ shift ≤ 24). */
function roundShift(value: number, shift: number): number {
  const kept = value >>> shift;
  const rest = value & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return rest > half || (rest === half && (kept & 1) === 1) ? kept + 1 : kept;
}

const ENCODE: Record<HalfDType, (x: number) => number> = { f16: floatToHalf, bf16: floatToBf16 };
const DECODE: Record<HalfDType, (h: number) => number> = { f16: halfToFloat, bf16: bf16ToFloat };

/** Values to half bits (rounded). */
export function encodeHalf(values: Float32Array, dtype: HalfDType): Uint16Array {
  const encode = ENCODE[dtype];
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = encode(values[i]);
  return out;
}

/** Half bits to f32 values (exact). */
export function decodeHalf(bits: Uint16Array, dtype: HalfDType): Float32Array {
  const decode = DECODE[dtype];
  return Float32Array.from(bits, decode);
}
