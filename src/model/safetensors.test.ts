import { describe, expect, it } from 'vitest';
import { fixture, fixtureJson } from '../testing/fixtures.ts';
import { FormatError } from './errors.ts';
import { MAX_HEADER_BYTES, parseHeader, readSafetensors, writeSafetensors } from './safetensors.ts';

const SHARDS = 'models/hf/quatricmorph_tiny-llama-2shard/';

interface Golden {
  scalars: {
    tensor: string;
    shard: string;
    shape: number[];
    index: number[];
    value_f32_bits: string;
  }[];
  bf16: { tensor: string; shard: string; shape: number[]; first_u16_le: string }[];
}

/** A file from a JSON header and a data area. */
function file(header: unknown, data = new Uint8Array(0), declaredLength?: number): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(declaredLength ?? json.byteLength), true);
  out.set(json, 8);
  out.set(data, 8 + json.byteLength);
  return out;
}

const f32 = (name: string, shape: number[], begin: number) => ({
  [name]: {
    dtype: 'F32',
    shape,
    data_offsets: [begin, begin + 4 * shape.reduce((a, b) => a * b, 1)],
  },
});

describe('reading real safetensors files', () => {
  it('reads both shards of the HF fixture, matching the values its author read with the safetensors library', () => {
    const golden = fixtureJson(`${SHARDS}golden.json`) as Golden;
    for (const g of golden.scalars) {
      const st = readSafetensors(fixture(SHARDS + g.shard), g.shard);
      const values = st.read(g.tensor);
      const flat = g.index.reduce((at, i, d) => at * g.shape[d] + i, 0);
      const bits = new Uint32Array(Float32Array.of(values[flat]).buffer)[0];
      expect(`0x${bits.toString(16).toUpperCase().padStart(8, '0')}`, g.tensor).toBe(
        g.value_f32_bits,
      );
    }
  });

  it('converts BF16 tensors to f32 exactly (the top 16 bits of the f32)', () => {
    const golden = fixtureJson(`${SHARDS}golden.json`) as Golden;
    for (const g of golden.bf16) {
      const st = readSafetensors(fixture(SHARDS + g.shard), g.shard);
      expect(st.header.tensors.get(g.tensor)?.dtype).toBe('BF16');
      const values = st.read(g.tensor);
      expect(values.length).toBe(g.shape[0] * g.shape[1]);
      const top = new Uint32Array(Float32Array.of(values[0]).buffer)[0] >>> 16;
      expect(top).toBe(Number.parseInt(g.first_u16_le, 16));
    }
  });

  it.each([
    'adapters/smollm-135m-instruct/medai_TFM-HITESH_5epochs/adapter_model.safetensors',
    'adapters/qwen2.5-0.5b-instruct/MatthewZhang473_20251017_101834_r6_alpha32/adapter_model.safetensors',
    'adapters/tinyllama-1.1b-chat/ARONA_minhmc2007/adapter_model.safetensors',
    'adapters/gpt2/generated-seqcls-c_attn/adapter_model.safetensors',
  ])('reads every tensor of %s', (path) => {
    const st = readSafetensors(fixture(path), path);
    expect(st.header.tensors.size).toBeGreaterThan(0);
    for (const [name, entry] of st.header.tensors) {
      const values = st.read(name);
      expect(values.length).toBe(entry.shape.reduce((a, b) => a * b, 1));
      expect(values.every(Number.isFinite), name).toBe(true);
    }
  });
});

describe('writing', () => {
  it('round-trips names, shapes, values and metadata, with 8-byte aligned data', () => {
    const a = Float32Array.from({ length: 6 }, (_, i) => i - 2.5);
    const b = Float32Array.of(1e-30, -0, Infinity);
    const bytes = writeSafetensors(
      [
        { name: 'a', shape: [2, 3], data: a },
        { name: 'b.c', shape: [3], data: b },
      ],
      { format: 'pt' },
    );
    const st = readSafetensors(bytes, 'round-trip');
    expect(st.header.dataStart % 8).toBe(0);
    expect(st.header.metadata).toEqual({ format: 'pt' });
    expect(st.header.tensors.get('a')?.shape).toEqual([2, 3]);
    expect(st.read('a')).toEqual(a);
    expect(st.read('b.c')).toEqual(b);
  });
});

describe('refuses malformed files with a message naming the problem', () => {
  const ok = f32('w', [2], 0);
  it.each<[string, Uint8Array, RegExp]>([
    ['empty', new Uint8Array(3), /too short for safetensors/],
    [
      'header past the end',
      file(ok, new Uint8Array(8), 10_000),
      /header length 10000 runs past the end/,
    ],
    [
      'huge header',
      file(ok, new Uint8Array(8), MAX_HEADER_BYTES + 1),
      /exceeds the 104857600-byte limit/,
    ],
    [
      'not JSON',
      (() => {
        const f = file(ok, new Uint8Array(8));
        f[8] = 0x7b;
        f[9] = 0x7b;
        return f;
      })(),
      /not valid UTF-8 JSON/,
    ],
    ['an array header', file([1, 2], new Uint8Array(0)), /not a JSON object/],
    [
      'truncated data',
      file(f32('w', [4], 0), new Uint8Array(8)),
      /tensor "w" ends at byte 16 of a 8-byte data area/,
    ],
    [
      'size mismatch',
      file({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8)),
      /F32\[3\] needs 12 bytes but data_offsets hold 8/,
    ],
    [
      'unknown dtype',
      file({ w: { dtype: 'F31', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4)),
      /unknown dtype "F31"/,
    ],
    [
      'negative shape',
      file({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, new Uint8Array(4)),
      /invalid shape \[-1\]/,
    ],
    [
      'backwards offsets',
      file({ w: { dtype: 'F32', shape: [0], data_offsets: [4, 0] } }, new Uint8Array(4)),
      /run backwards/,
    ],
    [
      'overlap',
      file({ ...f32('a', [2], 0), ...f32('b', [2], 4) }, new Uint8Array(12)),
      /"a" and "b" overlap/,
    ],
    [
      'bad metadata',
      file({ __metadata__: { n: 3 }, ...ok }, new Uint8Array(8)),
      /__metadata__\.n must be a string/,
    ],
  ])('%s', (_, bytes, message) => {
    expect(() => readSafetensors(bytes, 'bad.safetensors')).toThrow(FormatError);
    expect(() => readSafetensors(bytes, 'bad.safetensors')).toThrow(message);
  });

  it('recognises but refuses to read other dtypes', () => {
    const st = readSafetensors(
      file({ ids: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8)),
      'ids',
    );
    expect(() => st.read('ids')).toThrow(/"ids" is I64; only F32, F16, BF16 can be read/);
    expect(() => st.read('missing')).toThrow(/has no tensor "missing"/);
  });

  it('parses a header from its prefix alone (large files need not be read whole)', () => {
    const bytes = file(f32('w', [2], 0), new Uint8Array(8));
    const header = parseHeader(bytes.subarray(0, bytes.byteLength - 8), bytes.byteLength, 'w');
    expect(header.tensors.get('w')?.end).toBe(8);
  });
});
