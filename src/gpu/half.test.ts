import { expect, it } from 'vitest';
import { seededRandom } from '../testing/random.ts';
import {
  bf16ToFloat,
  decodeHalf,
  encodeHalf,
  floatToBf16,
  floatToHalf,
  halfToFloat,
} from './half.ts';

it('converts IEEE half precision, subnormals and specials included', () => {
  expect([0x3c00, 0xc000, 0x7bff, 0x0001, 0x8000, 0x7c00, 0xfc00].map(halfToFloat)).toEqual([
    1,
    -2,
    65504,
    2 ** -24,
    -0,
    Infinity,
    -Infinity,
  ]);
  expect(halfToFloat(0x7e00)).toBeNaN();
});

it('encodes every half exactly back to its own bits', () => {
  for (let h = 0; h < 0x10000; h++) {
    if ((h & 0x7c00) === 0x7c00 && h & 0x3ff) continue; // NaN payloads
    expect(floatToHalf(halfToFloat(h))).toBe(h);
  }
  expect(halfToFloat(floatToHalf(NaN))).toBeNaN();
});

it('rounds to the nearest half, ties to even, overflowing to Infinity', () => {
  const ulp1 = 2 ** -10; // the spacing of halves in [1, 2)
  expect(floatToHalf(1 + ulp1 / 2)).toBe(0x3c00); // tie: down to the even 1.0
  expect(floatToHalf(1 + (3 * ulp1) / 2)).toBe(0x3c02); // tie: up to the even neighbour
  expect(floatToHalf(1 + ulp1 * 0.51)).toBe(0x3c01);
  expect(floatToHalf(2 - ulp1 / 4)).toBe(0x4000); // carries into the exponent
  expect(floatToHalf(65504 + 15)).toBe(0x7bff);
  expect(floatToHalf(65520)).toBe(0x7c00); // the tie above the largest half
  expect(floatToHalf(-1e6)).toBe(0xfc00);
  expect(floatToHalf(2 ** -25)).toBe(0x0000); // tie between 0 and the smallest subnormal
  expect(floatToHalf(2 ** -25 * 1.01)).toBe(0x0001);
  expect(floatToHalf(-(2 ** -14) * (1 - 2 ** -12))).toBe(0x8400); // rounds up to the smallest normal
  expect(floatToHalf(1e-10)).toBe(0);
});

it('bfloat16 is the rounded top half of an f32', () => {
  expect(floatToBf16(1)).toBe(0x3f80);
  expect(floatToBf16(1 + 2 ** -8)).toBe(0x3f80); // tie: down to even
  expect(floatToBf16(1 + 3 * 2 ** -8)).toBe(0x3f82); // tie: up to even
  expect(floatToBf16(3.4e38)).toBe(0x7f80); // rounds past the largest bf16 to Infinity
  expect(bf16ToFloat(floatToBf16(-Infinity))).toBe(-Infinity);
  expect(bf16ToFloat(floatToBf16(NaN))).toBeNaN();
  expect(bf16ToFloat(0x3fc0)).toBe(1.5);
});

it('round-trips random values within half an ulp of each format', () => {
  const random = seededRandom(3);
  // Normal in both formats: ±2^-8 … 2^8.
  const values = Float32Array.from(
    { length: 2000 },
    () => Math.sign(random() - 0.5) * 2 ** (16 * random() - 8),
  );
  for (const [dtype, relUlp] of [
    ['f16', 2 ** -11],
    ['bf16', 2 ** -8],
  ] as const) {
    const back = decodeHalf(encodeHalf(values, dtype), dtype);
    values.forEach((v, i) => {
      expect(Math.abs(back[i] - v)).toBeLessThanOrEqual(Math.abs(v) * relUlp);
    });
    // Values already in the format pass through unchanged.
    expect(decodeHalf(encodeHalf(back, dtype), dtype)).toEqual(back);
  }
});
