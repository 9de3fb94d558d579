// The quant table against gguf-py: every dequantizer gives, bit for bit, the values gguf-py's
// gguf/quants.py gives for the fixtures' tensors (fixtures/models/gguf/*/dequant/*.npy: the first
// 32 rows of one tensor of every quantized type in every file, written by llama.cpp's
// llama-quantize), and a Q4_K decoder with either of two plausible bugs would not.
import { describe, expect, it } from 'vitest';
import { bf16ToFloat, halfToFloat } from '../../gpu/half.ts';
import { fixture, fixtureJson } from '../../testing/fixtures.ts';
import { readNpy } from '../../testing/npy.ts';
import {
  dequantize,
  GGML_TYPES,
  QUANT_TYPES,
  quantTypeById,
  rowBytes,
  unsupportedTypeName,
} from './quant-types.ts';
import { readGguf } from './read.ts';

const MODELS = ['llama', 'qwen2'] as const;

interface ManifestFile {
  file: string;
  dequant?: Record<string, { type: string; npy: string; rows: [number, number] }>;
}

/** Every (file, tensor, .npy) triple the fixtures' manifests list. */
const pairs = MODELS.flatMap((model) => {
  const manifest = fixtureJson(`models/gguf/${model}/manifest.json`) as {
    files: Record<string, ManifestFile>;
  };
  return Object.values(manifest.files).flatMap((f) =>
    Object.entries(f.dequant ?? {}).map(([tensor, d]) => ({ model, file: f.file, tensor, ...d })),
  );
});

/** The first `rows` rows of a fixture tensor: its type, raw blocks and element count. */
function firstRows(model: string, file: string, tensor: string, rows: number) {
  const gguf = readGguf(fixture(`models/gguf/${model}/${file}`), file);
  const info = gguf.tensors.get(tensor)!;
  const bytes = rows * rowBytes(info.type, info.ne[0]);
  return { type: info.type, raw: gguf.data(tensor).subarray(0, bytes), count: rows * info.ne[0] };
}

/** Positions where two f32 arrays differ in their bits (so −0 ≠ +0). */
function bitMismatches(x: Float32Array, y: Float32Array): number {
  const a = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const b = new Uint32Array(y.buffer, y.byteOffset, y.length);
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}

describe('the quant type table', () => {
  it("has ggml's ids and block sizes (ggml-common.h's block structs, gguf-py's GGML_QUANT_SIZES)", () => {
    const sizes = Object.fromEntries(
      Object.values(QUANT_TYPES).map((t) => [t.name, [t.id, t.blockSize, t.blockBytes]]),
    );
    expect(sizes).toEqual({
      F32: [0, 1, 4],
      F16: [1, 1, 2],
      BF16: [30, 1, 2],
      Q4_0: [2, 32, 2 + 16],
      Q4_1: [3, 32, 2 + 2 + 16],
      Q5_0: [6, 32, 2 + 4 + 16],
      Q5_1: [7, 32, 2 + 2 + 4 + 16],
      Q8_0: [8, 32, 2 + 32],
      Q2_K: [10, 256, 16 + 64 + 2 + 2],
      Q3_K: [11, 256, 32 + 64 + 12 + 2],
      Q4_K: [12, 256, 2 + 2 + 12 + 128],
      Q5_K: [13, 256, 2 + 2 + 12 + 32 + 128],
      Q6_K: [14, 256, 128 + 64 + 16 + 2],
      // Not ggml's: 256 blocks of 64 with two f32s, a code byte each and 32 bytes of nibbles.
      NF4: [undefined, 64 * 256, 4 + 4 + 256 + 256 * 32],
    });
    for (const t of GGML_TYPES) {
      expect(quantTypeById(t.id)).toBe(t);
      expect(unsupportedTypeName(t.id)).toBeUndefined();
    }
    expect(unsupportedTypeName(16)).toBe('IQ2_XXS');
    expect(quantTypeById(16)).toBeUndefined();
  });

  it('sizes rows and refuses partial blocks and byte counts that do not match', () => {
    expect(rowBytes('Q4_K', 512)).toBe(288);
    expect(() => rowBytes('Q4_K', 100)).toThrow(/multiple of 256 values, not 100/);
    expect(() => dequantize('Q8_0', new Uint8Array(33), 32)).toThrow(/take 34 bytes, but 33/);
  });
});

describe('dequantize equals gguf-py bit for bit', () => {
  it('covers every quantized type of the table', () => {
    const covered = new Set(pairs.map((p) => p.type));
    const quantized = GGML_TYPES.filter((t) => t.blockSize > 1);
    expect([...covered].sort()).toEqual(quantized.map((t) => t.name).sort());
  });

  it.each(pairs.map((p) => [`${p.model}/${p.file} ${p.tensor} (${p.type})`, p] as const))(
    '%s',
    (_, p) => {
      const npy = readNpy(fixture(`models/gguf/${p.model}/${p.npy}`), p.npy);
      const [begin, end] = p.rows;
      expect(begin).toBe(0);
      const { type, raw, count } = firstRows(p.model, p.file, p.tensor, end);
      expect(type).toBe(p.type);
      expect(npy.shape).toEqual([end, count / end]);
      expect(bitMismatches(dequantize(type, raw, count), npy.data)).toBe(0);
    },
  );

  it('F16 and BF16: every one of the 65,536 bit patterns', () => {
    const bits = Uint16Array.from({ length: 0x10000 }, (_, i) => i);
    const raw = new Uint8Array(bits.buffer);
    const f16 = dequantize('F16', raw, bits.length);
    const bf16 = dequantize('BF16', raw, bits.length);
    const wrong = [...bits].filter(
      (h) => !Object.is(f16[h], halfToFloat(h)) || !Object.is(bf16[h], bf16ToFloat(h)),
    );
    expect(wrong).toEqual([]);
  });
});

/**
 * A wrong decoder is the right one on rearranged bytes, so the exactness test above is shown to
 * catch the two bugs the fixtures' README measures in llama.cpp's logits.
 */
describe('a subtly wrong Q4_K decoder does not pass', () => {
  const p = pairs.find((x) => x.type === 'Q4_K')!;
  const npy = readNpy(fixture(`models/gguf/${p.model}/${p.npy}`), p.npy).data;
  const { raw, count } = firstRows(p.model, p.file, p.tensor, p.rows[1]);
  const blocks = (edit: (block: Uint8Array) => void) => {
    const copy = raw.slice();
    for (let at = 0; at < copy.length; at += QUANT_TYPES.Q4_K.blockBytes)
      edit(copy.subarray(at, at + QUANT_TYPES.Q4_K.blockBytes));
    return dequantize('Q4_K', copy, count);
  };

  it('the right one passes', () => {
    expect(
      bitMismatches(
        blocks(() => undefined),
        npy,
      ),
    ).toBe(0);
  });

  it('high nibble first', () => {
    const swapped = blocks((b) => {
      for (let i = 16; i < 144; i++) b[i] = ((b[i] & 15) << 4) | (b[i] >> 4);
    });
    expect(bitMismatches(swapped, npy)).toBeGreaterThan(count / 2);
  });

  it('the high 2 bits of the 6-bit scales and mins of sub-blocks 4–7 dropped', () => {
    const dropped = blocks((b) => {
      for (let i = 4; i < 12; i++) b[i] &= 63;
    });
    // Only sub-blocks 4–7 (the second half of every block) change, and most of them do.
    expect(bitMismatches(dropped, npy)).toBeGreaterThan(count / 4);
    const halves = (x: Float32Array) => x.filter((_, i) => i % 256 < 128);
    expect(bitMismatches(halves(dropped), halves(npy))).toBe(0);
  });
});
