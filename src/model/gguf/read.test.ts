// The GGUF reader on llama.cpp's files and on hostile ones. Fixtures: every tensor of every file
// in fixtures/models/gguf/ has the type, ne, shape, size and place its manifest.json gives (read
// there by gguf-py), and the F32/F16 files hold the values of hf/model.safetensors. Hostile files
// are written here byte by byte, each with one thing wrong, and must be refused in one line
// naming the file, quickly and without allocating what a huge count asks for.
import { describe, expect, it } from 'vitest';
import { FormatError } from '../errors.ts';
import { familyOfType } from '../families.ts';
import { modulePath } from '../architecture.ts';
import type { ModelConfig } from '../config.ts';
import { parseHfConfig } from '../hf-config.ts';
import { readSafetensors } from '../safetensors.ts';
import { fixture, fixtureJson } from '../../testing/fixtures.ts';
import { seededRandom } from '../../testing/random.ts';
import { dequantize } from './quant-types.ts';
import { readGguf, type GgufFile } from './read.ts';

const MODELS = ['llama', 'qwen2'] as const;

interface ManifestTensor {
  name: string;
  type: string;
  ne: number[];
  shape: number[];
  n_bytes: number;
  /** Absolute in the file, as gguf-py's ReaderTensor.data_offset is. */
  data_offset: number;
}

interface Manifest {
  architecture: string;
  files: Record<
    string,
    { file: string; bytes: number; 'general.file_type': number; tensors: ManifestTensor[] }
  >;
}

const manifest = (model: string) => fixtureJson(`models/gguf/${model}/manifest.json`) as Manifest;

const files = MODELS.flatMap((model) =>
  Object.values(manifest(model).files).map((f) => ({ model, ...f })),
);

const open = (model: string, file: string) =>
  readGguf(fixture(`models/gguf/${model}/${file}`), file);

describe("llama.cpp's files", () => {
  it.each(files.map((f) => [`${f.model}/${f.file}`, f] as const))('%s', (_, f) => {
    const gguf = open(f.model, f.file);
    expect(gguf.version).toBe(3);
    expect(gguf.alignment).toBe(32);
    expect(gguf.metadata.get('general.architecture')).toEqual({
      type: 'string',
      value: manifest(f.model).architecture,
    });
    expect(gguf.metadata.get('general.file_type')).toEqual({
      type: 'u32',
      value: f['general.file_type'],
    });
    const read = [...gguf.tensors.values()].map((t) => ({
      name: t.name,
      type: t.type,
      ne: t.ne,
      shape: t.shape,
      n_bytes: t.bytes,
      data_offset: t.offset,
    }));
    expect(read).toEqual(f.tensors);
    for (const t of gguf.tensors.values()) {
      expect(t.offset % gguf.alignment).toBe(0);
      expect(gguf.data(t.name).byteLength).toBe(t.bytes);
    }
  });

  it('reads every metadata value type the files use, arrays of strings included', () => {
    const { metadata } = open('llama', 'model-f32.gguf');
    const tokens = metadata.get('tokenizer.ggml.tokens');
    expect(tokens?.type === 'array' && tokens.itemType === 'string' && tokens.value.length).toBe(
      280,
    );
    const types = metadata.get('tokenizer.ggml.token_type');
    expect(types?.type === 'array' && types.itemType === 'i32' && types.value.length).toBe(280);
    expect(metadata.get('llama.attention.head_count')).toEqual({ type: 'u32', value: 8 });
    expect(metadata.get('llama.rope.freq_base')).toEqual({ type: 'f32', value: 500000 });
    expect(metadata.get('tokenizer.ggml.add_bos_token')).toEqual({ type: 'bool', value: false });
  });

  it('hands out raw blocks as views of the file, at their place in it', () => {
    const bytes = fixture('models/gguf/llama/model-Q4_K_M.gguf');
    const gguf = readGguf(bytes, 'model-Q4_K_M.gguf');
    const data = gguf.data('blk.0.attn_k.weight');
    expect(data.buffer).toBe(bytes.buffer);
    expect(data.byteOffset).toBe(gguf.tensors.get('blk.0.attn_k.weight')!.offset);
    expect(() => gguf.data('nope')).toThrow(/model-Q4_K_M.gguf: has no tensor "nope"/);
  });
});

/**
 * A llama.cpp tensor's name in the HF checkpoint: the family's table for the linear modules,
 * gguf-py's tensor_mapping.py for the others.
 */
function hfName(gguf: string, config: ModelConfig): string | undefined {
  const { arch } = config;
  const fixed: Record<string, string> = {
    'token_embd.weight': `${arch.embedding}.weight`,
    'output_norm.weight': `${arch.norms.final}.weight`,
    'output.weight': 'lm_head.weight',
  };
  if (gguf in fixed) return fixed[gguf];
  const [, layer, tensor, suffix] = /^blk\.(\d+)\.(\w+)\.(weight|bias)$/.exec(gguf)!;
  const norms: Record<string, string> = { attn_norm: arch.norms.input, ffn_norm: arch.norms.mlp };
  if (tensor in norms) return `${arch.layerPrefix}${layer}.${norms[tensor]}.${suffix}`;
  const tensors = familyOfType(config.modelType).gguf.tensors;
  const module = arch.modules.find((m) => tensors[m.name] === tensor);
  return module && `${modulePath(arch, Number(layer), module)}.${suffix}`;
}

/**
 * HF's row order of a llama.cpp q/k weight where the family permutes them (llama.cpp's
 * LlamaModel.permute): GGUF row 2i + t of a head is HF row t·d/2 + i.
 */
function unpermute(values: Float32Array, rows: number, heads: number): Float32Array {
  const cols = values.length / rows;
  const size = rows / heads;
  const out = new Float32Array(values.length);
  for (let r = 0; r < rows; r++) {
    const head = Math.floor(r / size);
    const within = r % size;
    const hf = head * size + (within % 2) * (size / 2) + Math.floor(within / 2);
    out.set(values.subarray(r * cols, (r + 1) * cols), hf * cols);
  }
  return out;
}

describe('F32 and F16 files hold the values of hf/model.safetensors (all exact in f16)', () => {
  it.each(MODELS.flatMap((m) => ['model-f32.gguf', 'model-f16.gguf'].map((f) => [m, f])))(
    '%s/%s',
    (model, file) => {
      const config = parseHfConfig(fixtureJson(`models/gguf/${model}/hf/config.json`));
      const permuted = familyOfType(config.modelType).gguf.permuteQK;
      const hf = readSafetensors(fixture(`models/gguf/${model}/hf/model.safetensors`), model);
      const gguf = open(model, file);
      const compared = new Set<string>();
      for (const t of gguf.tensors.values()) {
        const name = hfName(t.name, config);
        expect(name, t.name).toBeDefined();
        let values = dequantize(
          t.type,
          gguf.data(t.name),
          t.ne.reduce((a, b) => a * b, 1),
        );
        const heads = /attn_q\.weight$/.test(t.name)
          ? config.numHeads
          : /attn_k\.weight$/.test(t.name)
            ? config.numKvHeads
            : 0;
        if (permuted && heads) values = unpermute(values, t.shape[0], heads);
        expect(hf.header.tensors.get(name!)?.shape, t.name).toEqual(t.shape);
        const bits = (x: Float32Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);
        expect(Buffer.compare(bits(values), bits(hf.read(name!))), t.name).toBe(0);
        compared.add(name!);
      }
      expect([...compared].sort()).toEqual([...hf.header.tensors.keys()].sort());
    },
  );
});

// ---- hostile files ---------------------------------------------------------------------------

/** Little-endian bytes, written field by field, any value allowed. */
class Writer {
  private readonly parts: number[] = [];

  get length(): number {
    return this.parts.length;
  }

  bytes(values: ArrayLike<number>): this {
    for (let i = 0; i < values.length; i++) this.parts.push(values[i]);
    return this;
  }

  private readonly scratch = new DataView(new ArrayBuffer(8));

  /** The scratch's first `size` bytes, as set by the caller. */
  private put(size: number): this {
    return this.bytes(new Uint8Array(this.scratch.buffer, 0, size));
  }

  u8(v: number): this {
    this.scratch.setUint8(0, v);
    return this.put(1);
  }

  i8(v: number): this {
    this.scratch.setInt8(0, v);
    return this.put(1);
  }

  u16(v: number): this {
    this.scratch.setUint16(0, v, true);
    return this.put(2);
  }

  i16(v: number): this {
    this.scratch.setInt16(0, v, true);
    return this.put(2);
  }

  u32(v: number): this {
    this.scratch.setUint32(0, v, true);
    return this.put(4);
  }

  i32(v: number): this {
    this.scratch.setInt32(0, v, true);
    return this.put(4);
  }

  f32(v: number): this {
    this.scratch.setFloat32(0, v, true);
    return this.put(4);
  }

  f64(v: number): this {
    this.scratch.setFloat64(0, v, true);
    return this.put(8);
  }

  u64(v: number | bigint): this {
    this.scratch.setBigUint64(0, BigInt(v), true);
    return this.put(8);
  }

  i64(v: bigint): this {
    this.scratch.setBigInt64(0, v, true);
    return this.put(8);
  }

  string(text: string | Uint8Array, length?: number | bigint): this {
    const bytes = typeof text === 'string' ? new TextEncoder().encode(text) : text;
    return this.u64(length ?? bytes.length).bytes(bytes);
  }

  zeros(n: number): this {
    return this.bytes(new Uint8Array(n));
  }

  done(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

interface TensorSpec {
  name: string;
  ne: (number | bigint)[];
  type: number;
  offset: number | bigint;
}

interface FileSpec {
  magic: string;
  version: number;
  tensorCount?: number | bigint;
  kvCount?: number | bigint;
  /** Writes the key-values; returns how many it wrote. */
  kv: (w: Writer) => number;
  tensors: TensorSpec[];
  alignment: number;
  /** Bytes of the data section. */
  data: number;
}

const T = { F32: 0, Q4_0: 2 } as const;

const withKv = (...entries: ((w: Writer) => unknown)[]) => ({
  kv: (w: Writer) => {
    entries.forEach((e) => e(w));
    return entries.length;
  },
});

/** Every value type, arrays of numbers and of strings. */
const everyValueType = withKv(
  (w) => w.string('general.architecture').u32(8).string('llama'),
  (w) => w.string('a.u8').u32(0).u8(200),
  (w) => w.string('a.i8').u32(1).i8(-5),
  (w) => w.string('a.u16').u32(2).u16(65000),
  (w) => w.string('a.i16').u32(3).i16(-300),
  (w) => w.string('a.u32').u32(4).u32(4_000_000_000),
  (w) => w.string('a.i32').u32(5).i32(-70_000),
  (w) => w.string('a.f32').u32(6).f32(0.5),
  (w) => w.string('a.bool').u32(7).u8(1),
  (w) =>
    w
      .string('a.u64')
      .u32(10)
      .u64(2n ** 60n),
  (w) =>
    w
      .string('a.i64')
      .u32(11)
      .i64(-(2n ** 40n)),
  (w) => w.string('a.f64').u32(12).f64(Math.PI),
  (w) => w.string('a.strings').u32(9).u32(8).u64(3).string('x').string('').string('ünï'),
  (w) => w.string('a.f32s').u32(9).u32(6).u64(2).f32(1.5).f32(-2),
  (w) => w.string('a.u8s').u32(9).u32(0).u64(3).u8(1).u8(2).u8(3),
  (w) => w.string('a.i64s').u32(9).u32(11).u64(1).i64(-1n),
  (w) => w.string('a.bools').u32(9).u32(7).u64(2).u8(0).u8(1),
);

/** A valid file: a Q4_0 [2 rows of 32] at 0 and an F32 [3] at 64; no padding after the end. */
const VALID: FileSpec = {
  magic: 'GGUF',
  version: 3,
  ...everyValueType,
  tensors: [
    { name: 'blk.0.attn_q.weight', ne: [32, 2], type: T.Q4_0, offset: 0 },
    { name: 'output_norm.weight', ne: [3], type: T.F32, offset: 64 },
  ],
  alignment: 32,
  data: 64 + 12,
};

function build(changes: Partial<FileSpec> = {}): Uint8Array {
  const spec = { ...VALID, ...changes };
  const w = new Writer().bytes(new TextEncoder().encode(spec.magic)).u32(spec.version);
  w.u64(spec.tensorCount ?? spec.tensors.length);
  const kv = new Writer();
  const kvCount = spec.kv(kv);
  w.u64(spec.kvCount ?? kvCount).bytes(kv.done());
  for (const t of spec.tensors) {
    w.string(t.name).u32(t.ne.length);
    for (const n of t.ne) w.u64(n);
    w.u32(t.type).u64(t.offset);
  }
  w.zeros((spec.alignment - (w.length % spec.alignment)) % spec.alignment);
  return w.zeros(spec.data).done();
}

/** Reads, expecting one FormatError line naming the file and matching `message`, soon. */
function refused(bytes: Uint8Array, message: RegExp): string {
  const start = performance.now();
  let error: unknown;
  try {
    readGguf(bytes, 'bad.gguf');
  } catch (e) {
    error = e;
  }
  expect(performance.now() - start).toBeLessThan(250);
  expect(error).toBeInstanceOf(FormatError);
  const text = (error as FormatError).message;
  expect(text).toMatch(/^bad\.gguf: /);
  expect(text).not.toContain('\n');
  expect(text).toMatch(message);
  return text;
}

describe('a file written here', () => {
  it('reads back: every value type, tensors placed after the aligned header', () => {
    const bytes = build();
    const gguf: GgufFile = readGguf(bytes, 'ok.gguf');
    expect(Object.fromEntries(gguf.metadata)).toEqual({
      'general.architecture': { type: 'string', value: 'llama' },
      'a.u8': { type: 'u8', value: 200 },
      'a.i8': { type: 'i8', value: -5 },
      'a.u16': { type: 'u16', value: 65000 },
      'a.i16': { type: 'i16', value: -300 },
      'a.u32': { type: 'u32', value: 4_000_000_000 },
      'a.i32': { type: 'i32', value: -70_000 },
      'a.f32': { type: 'f32', value: 0.5 },
      'a.bool': { type: 'bool', value: true },
      'a.u64': { type: 'u64', value: 2n ** 60n },
      'a.i64': { type: 'i64', value: -(2n ** 40n) },
      'a.f64': { type: 'f64', value: Math.PI },
      'a.strings': { type: 'array', itemType: 'string', value: ['x', '', 'ünï'] },
      'a.f32s': { type: 'array', itemType: 'f32', value: Float32Array.of(1.5, -2) },
      'a.u8s': { type: 'array', itemType: 'u8', value: Uint8Array.of(1, 2, 3) },
      'a.i64s': { type: 'array', itemType: 'i64', value: BigInt64Array.of(-1n) },
      'a.bools': { type: 'array', itemType: 'bool', value: [false, true] },
    });
    expect(gguf.dataOffset % 32).toBe(0);
    expect(gguf.dataOffset + 76).toBe(bytes.length);
    expect(gguf.tensors.get('blk.0.attn_q.weight')).toEqual({
      name: 'blk.0.attn_q.weight',
      type: 'Q4_0',
      ne: [32, 2],
      shape: [2, 32],
      offset: gguf.dataOffset,
      bytes: 36,
    });
    expect(gguf.tensors.get('output_norm.weight')?.offset).toBe(gguf.dataOffset + 64);
  });

  it('version 2 reads the same; a general.alignment of 64 moves the data', () => {
    expect(readGguf(build({ version: 2 }), 'v2.gguf').version).toBe(2);
    const aligned = build({
      ...withKv((w) => w.string('general.alignment').u32(4).u32(64)),
      alignment: 64,
      tensors: [{ name: 't', ne: [3], type: T.F32, offset: 0 }],
      data: 12,
    });
    const gguf = readGguf(aligned, 'a64.gguf');
    expect([gguf.alignment, gguf.dataOffset % 64]).toEqual([64, 0]);
  });
});

describe('hostile files are refused in one line, fast', () => {
  const cases: [string, Uint8Array, RegExp][] = [
    ['wrong magic', build({ magic: 'GGML' }), /not a GGUF file: it starts with "GGML"/],
    ['version 4', build({ version: 4 }), /GGUF version 4 is not supported \(only 2 and 3\)/],
    ['version 1', build({ version: 1 }), /GGUF version 1 is not supported/],
    ['big-endian', build({ version: 3 << 24 }), /big-endian GGUF files are not supported/],
    [
      'a tensor count past 2⁵³',
      build({ tensorCount: 2n ** 64n - 1n }),
      /tensor count is \d+, beyond/,
    ],
    ['a tensor count past the limit', build({ tensorCount: 1_000_001 }), /more than the 1000000/],
    [
      'a tensor count the file cannot hold',
      build({ tensorCount: 1_000_000 }),
      /tensor count is 1000000, but/,
    ],
    [
      'a metadata count the file cannot hold',
      build({ kvCount: 999_999 }),
      /metadata count is 999999, but/,
    ],
    [
      'a key longer than the file',
      build(withKv((w) => w.string('k', 2n ** 50n))),
      /metadata key #0 is 1125899906842624 bytes long, more than the \d+ left/,
    ],
    [
      'an array of 2⁴⁰ bytes',
      build(
        withKv((w) =>
          w
            .string('k')
            .u32(9)
            .u32(0)
            .u64(2n ** 40n),
        ),
      ),
      /metadata "k"'s item count is 1099511627776, but/,
    ],
    [
      'an array of a billion strings',
      build(withKv((w) => w.string('k').u32(9).u32(8).u64(1e9))),
      /metadata "k"'s item count is 1000000000, but .* at least 8000000000 bytes/,
    ],
    [
      'an array of arrays',
      build(withKv((w) => w.string('k').u32(9).u32(9).u64(0))),
      /metadata "k" is an array of arrays/,
    ],
    [
      'an unknown value type',
      build(withKv((w) => w.string('k').u32(13).u8(0))),
      /"k" has unknown value type 13/,
    ],
    ['a bool of 2', build(withKv((w) => w.string('k').u32(7).u8(2))), /"k" is a bool stored as 2/],
    [
      'a key not UTF-8',
      build(withKv((w) => w.string(Uint8Array.of(0xff)).u32(0).u8(0))),
      /metadata key #0 is not valid UTF-8/,
    ],
    ['an empty key', build(withKv((w) => w.string('').u32(0).u8(0))), /metadata key #0 is empty/],
    [
      'a key twice',
      build(
        withKv(
          (w) => w.string('k').u32(0).u8(0),
          (w) => w.string('k').u32(0).u8(0),
        ),
      ),
      /metadata "k" appears twice/,
    ],
    [
      'general.alignment of another type',
      build(withKv((w) => w.string('general.alignment').u32(10).u64(32))),
      /"general.alignment" must be a u32, not u64/,
    ],
    [
      'general.alignment of 48',
      build(withKv((w) => w.string('general.alignment').u32(4).u32(48))),
      /"general.alignment" is 48, not a power of two/,
    ],
    [
      'five dimensions',
      build({ tensors: [{ name: 't', ne: [1, 1, 1, 1, 1], type: T.F32, offset: 0 }] }),
      /tensor "t" has 5 dimensions; ggml allows at most 4/,
    ],
    [
      'an unknown ggml type',
      build({ tensors: [{ name: 't', ne: [32], type: 99, offset: 0 }] }),
      /tensor "t" has unknown ggml type 99/,
    ],
    [
      'a ggml type we do not read',
      build({ tensors: [{ name: 't', ne: [256], type: 16, offset: 0 }] }),
      /tensor "t" is ggml type IQ2_XXS \(16\), which is not supported \(supported: F32, F16, /,
    ],
    [
      'a row of partial blocks',
      build({ tensors: [{ name: 't', ne: [30, 2], type: T.Q4_0, offset: 0 }] }),
      /tensor "t": rows of 30 values are not whole Q4_0 blocks of 32/,
    ],
    [
      'a shape bigger than the file',
      build({ tensors: [{ name: 't', ne: [2 ** 26, 2 ** 26, 2 ** 26], type: T.F32, offset: 0 }] }),
      /tensor "t": F32\[67108864, 67108864, 67108864\] needs more bytes than the \d+-byte file/,
    ],
    [
      'a dimension past 2⁶³',
      build({ tensors: [{ name: 't', ne: [2n ** 63n], type: T.F32, offset: 0 }] }),
      /tensor "t"'s ne\[0\] is 9223372036854775808, beyond/,
    ],
    [
      'tensor data outside the file',
      build({ tensors: [{ name: 't', ne: [3], type: T.F32, offset: 1024 }] }),
      /tensor "t"'s 12 bytes at \[\d+, \d+\) run past the end of the \d+-byte file/,
    ],
    [
      'a misaligned offset',
      build({ tensors: [{ name: 't', ne: [3], type: T.F32, offset: 16 }] }),
      /tensor "t"'s data offset 16 is not a multiple of the alignment 32/,
    ],
    [
      'overlapping tensors',
      build({
        tensors: [
          { name: 'a', ne: [3], type: T.F32, offset: 0 },
          { name: 'b', ne: [3], type: T.F32, offset: 0 },
        ],
      }),
      /tensors "a" and "b" overlap/,
    ],
    [
      'a tensor name twice',
      build({
        tensors: [
          { name: 'a', ne: [3], type: T.F32, offset: 0 },
          { name: 'a', ne: [3], type: T.F32, offset: 32 },
        ],
      }),
      /tensor "a" appears twice/,
    ],
    [
      'a 64-byte tensor name',
      build({ tensors: [{ name: 'x'.repeat(64), ne: [3], type: T.F32, offset: 0 }] }),
      /names are limited to 63 bytes/,
    ],
  ];

  it.each(cases)('%s', (_, bytes, message) => {
    refused(bytes, message);
  });

  it('truncated at every byte', () => {
    const bytes = build();
    for (let n = 0; n < bytes.length; n++)
      refused(bytes.subarray(0, n), /truncated|past the end|not a GGUF file/);
  });

  it('a real file truncated at 300 places, from its header to its last tensor', () => {
    const bytes = fixture('models/gguf/llama/model-Q3_K_M.gguf');
    const gguf = readGguf(bytes, 'whole');
    const end = Math.max(...[...gguf.tensors.values()].map((t) => t.offset + t.bytes));
    for (let i = 0; i < 300; i++) {
      const n = Math.floor((i / 300) ** 2 * end);
      refused(bytes.subarray(0, n), /truncated|past the end|not a GGUF file/);
    }
    expect(readGguf(bytes.subarray(0, end), 'trimmed').tensors.size).toBe(gguf.tensors.size);
  });

  it('random byte changes: read or refused with a FormatError, never another error', () => {
    const bytes = build();
    const random = seededRandom(7);
    for (let i = 0; i < 3000; i++) {
      const mutated = bytes.slice();
      for (let k = 0, changes = 1 + Math.floor(random() * 4); k < changes; k++)
        mutated[Math.floor(random() * mutated.length)] = Math.floor(random() * 256);
      try {
        readGguf(mutated, 'fuzz.gguf');
      } catch (e) {
        expect(e, String(e)).toBeInstanceOf(FormatError);
        expect((e as Error).message).not.toContain('\n');
      }
    }
  });
});
