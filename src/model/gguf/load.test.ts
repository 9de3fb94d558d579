// GGUF models against their oracles: the same weights as an HF folder (hf/), and llama.cpp's
// logits, tokens and greedy continuations (expected-<f>.json; fixtures/MANIFEST.md says what each file holds).
import { describe, expect, it } from 'vitest';
import { FIXTURES, fixture, fixtureJson } from '../../testing/fixtures.ts';
import { ReferenceModel } from '../cpu/reference.ts';
import { FormatError } from '../errors.ts';
import { folderFiles } from '../files-node.ts';
import { loadHfFolder } from '../hf-folder.ts';
import { loadModelFromPath } from '../load-node.ts';
import { baseModelId, loadModelFiles } from '../load.ts';
import { GGUF_VALUE_TYPE } from './constants.ts';
import { loadGgufModel, type GgufModel } from './load.ts';
import { QUANT_TYPES, dequantize } from './quant-types.ts';
import { readGguf, type GgufValue } from './read.ts';
import { ggufTokenizer } from './tokenizer.ts';

const MODELS = ['llama', 'qwen2'] as const;
const QUANTS = [
  'Q8_0',
  'Q4_0',
  'Q4_1',
  'Q5_0',
  'Q5_1',
  'Q4_K_M',
  'Q5_K_M',
  'Q6_K',
  'Q3_K_M',
  'Q2_K',
];

interface Summary {
  logits: number[][][];
  logits_last_row: number[][];
  greedy_ids: number[];
}
interface Expected extends Summary {
  input_ids: number[][];
  prompt: string;
  prompt_ids: number[];
  dequantized_f32_reference?: Summary;
}

const path = (model: string, file: string) => `models/gguf/${model}/${file}`;
const expected = (model: string, f: string) =>
  fixtureJson(path(model, `expected-${f}.json`)) as Expected;
const load = (model: string, f: string): GgufModel =>
  loadGgufModel(fixture(path(model, `model-${f}.gguf`)), `model-${f}.gguf`);

/** max |logit − llama.cpp's| over positions 0–7 and the last, both rows. */
function logitError(model: GgufModel, input: number[][], want: Summary): number {
  const ref = new ReferenceModel(model.config, model.weights);
  let worst = 0;
  input.forEach((ids, r) => {
    ref.reset();
    const out = ref.run(ids);
    const rows = [
      ...want.logits[r].map((row, p) => [out[p], row]),
      [out.at(-1)!, want.logits_last_row[r]],
    ];
    for (const [got, row] of rows)
      row.forEach((e, v) => (worst = Math.max(worst, Math.abs(got[v] - e))));
  });
  return worst;
}

/** llama.cpp's greedy continuation: argmax (lowest id on ties), not stopping at EOG. */
function greedy(model: GgufModel, prompt: number[], steps: number): number[] {
  const ref = new ReferenceModel(model.config, model.weights);
  let logits = ref.run(prompt).at(-1)!;
  const out: number[] = [];
  for (let s = 0; s < steps; s++) {
    let next = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[next]) next = i;
    out.push(next);
    logits = ref.run([next])[0];
  }
  return out;
}

describe.each(MODELS)('%s GGUF', (model) => {
  it.each(['f32', 'f16'])('%s holds the HF folder’s weights and architecture', async (f) => {
    const hf = await loadHfFolder(await folderFiles(`${FIXTURES}${path(model, 'hf')}`));
    const gguf = load(model, f);
    const withoutSource = (c: typeof gguf.config) => ({ ...c, source: undefined });
    expect(withoutSource(gguf.config)).toEqual(withoutSource(hf.config));
    expect([...gguf.weights.keys()].sort()).toEqual([...hf.weights.keys()].sort());
    for (const [name, t] of hf.weights) {
      const g = gguf.weights.get(name)!;
      expect(g.shape, name).toEqual(t.shape);
      expect(sameBits(g.data, t.data), name).toBe(true);
      expect(g.half, name).toBe(f === 'f16' && t.shape.length === 2 ? 'f16' : undefined);
      expect(g.quantized, name).toBeUndefined();
    }
  });

  it('f32 matches llama.cpp’s logits and greedy continuation; the prompt tokenizes as llama.cpp', () => {
    const e = expected(model, 'f32');
    const gguf = load(model, 'f32');
    expect(logitError(gguf, e.input_ids, e)).toBeLessThan(1e-4);
    expect(greedy(gguf, e.prompt_ids, 20)).toEqual(e.greedy_ids);
    expect(gguf.tokenizer.encode(e.prompt)).toEqual(e.prompt_ids);
    expect(gguf.tokenizer.decode(e.prompt_ids)).toBe(e.prompt);
  });

  it.each(QUANTS)(
    '%s dequantizes to the weights llama.cpp’s dequantized-f32 reference ran',
    (q) => {
      const e = expected(model, q);
      const gguf = load(model, q);
      expect(logitError(gguf, e.input_ids, e.dequantized_f32_reference!)).toBeLessThan(1e-4);
      expect(gguf.tokenizer.encode(e.prompt)).toEqual(e.prompt_ids);
      if (q === 'Q4_0' || q === 'Q4_K_M')
        expect(greedy(gguf, e.prompt_ids, 20)).toEqual(e.dequantized_f32_reference!.greedy_ids);
      // The raw blocks kept for quantized kernels dequantize to the values, rows in HF order.
      for (const [name, t] of gguf.weights) {
        if (t.shape.length === 2) expect(t.quantized, name).toBeDefined();
        if (t.quantized)
          expect(
            sameBits(dequantize(t.quantized.type, t.quantized.blocks, t.data.length), t.data),
            name,
          ).toBe(true);
      }
    },
  );
});

describe('GGUF tokenizer and wiring', () => {
  it('loads through loadModelFromPath with its own tokenizer and token ids', async () => {
    const loaded = await loadModelFromPath(`${FIXTURES}${path('llama', 'model-Q4_0.gguf')}`);
    expect(loaded.config.arch.family).toBe('llama');
    expect(loaded.config.bosTokenId).toBe(277);
    expect(loaded.config.eosTokenIds).toEqual([278]);
    expect(loaded.tokenizer.bosId).toBe(277);
    expect(loaded.tokenizer.eosIds).toEqual([278]);
    // add_bos_token is false in the file: no BOS even with special tokens.
    expect(loaded.tokenizer.encode('the')[0]).not.toBe(277);
  });

  it('reads a SentencePiece vocabulary (scores, byte fallback, BOS, space prefix)', () => {
    const pieces = ['<unk>', '<s>', '</s>', ...bytePieces(), '▁', 'h', 'i', '▁h', '▁hi', 'hi'];
    const scores = pieces.map((p, i) => (p === '▁hi' ? 0 : p === 'hi' ? -5 : -i));
    const types = pieces.map((p, i) => (i === 0 ? 2 : i < 3 ? 3 : p.startsWith('<0x') ? 6 : 1));
    const tokenizer = ggufTokenizer(
      metadata({
        'tokenizer.ggml.model': str('llama'),
        'tokenizer.ggml.tokens': { type: 'array', itemType: 'string', value: pieces },
        'tokenizer.ggml.scores': {
          type: 'array',
          itemType: 'f32',
          value: Float32Array.from(scores),
        },
        'tokenizer.ggml.token_type': {
          type: 'array',
          itemType: 'i32',
          value: Int32Array.from(types),
        },
        'tokenizer.ggml.bos_token_id': u32(1),
        'tokenizer.ggml.eos_token_id': u32(2),
        'tokenizer.ggml.unknown_token_id': u32(0),
      }),
      'spm.gguf',
    );
    const id = (p: string) => pieces.indexOf(p);
    // "▁hi" beats "▁h" + "i" by score; "!" has no piece and falls back to its byte.
    expect(tokenizer.encode('hi!')).toEqual([1, id('▁hi'), id('<0x21>')]);
    expect(tokenizer.decode(tokenizer.encode('hi!'), { skipSpecialTokens: true })).toBe('hi!');
    expect(tokenizer.bosId).toBe(1);
    expect(tokenizer.eosIds).toEqual([2]);
  });

  it('refuses an unknown pre-tokenizer and tokenizer model by name', () => {
    const base = readGguf(fixture(path('llama', 'model-Q4_0.gguf')), 'x').metadata;
    const withPre = new Map(base).set('tokenizer.ggml.pre', str('made-up'));
    expect(() => ggufTokenizer(withPre, 'x.gguf')).toThrow(
      /tokenizer.ggml.pre "made-up" is not supported \(supported: llama-bpe/,
    );
    const withModel = new Map(base).set('tokenizer.ggml.model', str('rwkv'));
    expect(() => ggufTokenizer(withModel, 'x.gguf')).toThrow(
      /tokenizer.ggml.model "rwkv" is not supported/,
    );
  });
});

describe('hostile GGUF models are refused in one FormatError line', () => {
  const source = fixture(path('llama', 'model-Q4_0.gguf'));
  const parsed = readGguf(source, 'source');

  /** The fixture rewritten with changed metadata and tensors. */
  function rewrite(
    change: (meta: Map<string, GgufValue>) => void,
    tensor: (name: string, ne: number[]) => number[] = (_, ne) => ne,
  ): Uint8Array {
    const meta = new Map(parsed.metadata);
    change(meta);
    return writeGguf(
      meta,
      [...parsed.tensors.values()].map((t) => ({
        name: t.name,
        id: QUANT_TYPES[t.type].id,
        ne: tensor(t.name, t.ne),
        data: parsed.data(t.name),
      })),
    );
  }

  function refused(bytes: Uint8Array, message: RegExp) {
    let error: unknown;
    try {
      loadGgufModel(bytes, 'bad.gguf');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(FormatError);
    const text = (error as Error).message;
    expect(text.split('\n')).toHaveLength(1);
    expect(text).toMatch(/^bad\.gguf: /);
    expect(text).toMatch(message);
  }

  it('rewriting the fixture unchanged loads', () => {
    expect(
      loadGgufModel(
        rewrite(() => {}),
        'same.gguf',
      ).config.numLayers,
    ).toBe(2);
  });

  it('an unknown architecture, listing the known ones', () => {
    refused(
      rewrite((m) => m.set('general.architecture', str('mamba'))),
      /general.architecture "mamba" is not supported \(supported: llama, qwen2, qwen3, gemma3, smollm3, phi3, gpt2\)/,
    );
  });

  it('a missing or non-positive required key, by its llama.cpp name', () => {
    refused(
      rewrite((m) => m.delete('llama.embedding_length')),
      /"llama.embedding_length" is missing/,
    );
    refused(
      rewrite((m) => m.set('llama.block_count', u32(0))),
      /"llama.block_count" must be a positive number/,
    );
    refused(
      rewrite((m) => m.set('llama.block_count', u32(1e6))),
      /block_count 1000000 needs at least one tensor per layer/,
    );
  });

  it('a tensor whose shape the metadata does not imply', () => {
    refused(
      rewrite(
        () => {},
        (name, ne) => (name === 'blk.1.attn_k.weight' ? [ne[0], ne[1] / 2] : ne),
      ),
      /tensor "blk.1.attn_k.weight" is \[32, 256\], the metadata implies \[64, 256\]/,
    );
  });

  it('a rope dimension count the family does not rotate, and a split file', () => {
    refused(
      rewrite((m) => m.set('llama.rope.dimension_count', u32(16))),
      /rope.dimension_count 16 differs/,
    );
    refused(
      rewrite((m) => m.set('split.count', { type: 'u16', value: 3 })),
      /part 1 of 3/,
    );
    refused(
      rewrite((m) => m.set('general.type', str('adapter'))),
      /is a LoRA adapter/,
    );
  });
});

describe('the Hub repo a GGUF model was converted from', () => {
  it('comes with the loaded model and is the base that adapters trained on it name', async () => {
    const parsed = readGguf(fixture(path('llama', 'model-Q8_0.gguf')), 'source');
    const meta = new Map(parsed.metadata).set(
      'general.source.repo_url',
      str('https://huggingface.co/meta-llama/Llama-3.2-1B-Instruct'),
    );
    const bytes = writeGguf(
      meta,
      [...parsed.tensors.values()].map((t) => ({
        name: t.name,
        id: QUANT_TYPES[t.type].id,
        ne: t.ne,
        data: parsed.data(t.name),
      })),
    );
    const loaded = await loadModelFiles(
      [{ name: 'Llama-3.2-1B-Instruct-Q8_0.gguf', bytes: () => Promise.resolve(bytes) }],
      'Llama-3.2-1B-Instruct-Q8_0.gguf',
    );
    // The name stays what was loaded, which a saved run must match to resume.
    expect(loaded.name).toBe('Llama-3.2-1B-Instruct-Q8_0.gguf');
    expect(loaded.hubId).toBe('meta-llama/Llama-3.2-1B-Instruct');
    expect(baseModelId(loaded)).toBe('meta-llama/Llama-3.2-1B-Instruct');
    // Without the metadata (llama.cpp's test files), the file name as before.
    const plain = await loadModelFromPath(`${FIXTURES}${path('llama', 'model-Q8_0.gguf')}`);
    expect(plain.hubId).toBeUndefined();
    expect(baseModelId(plain)).toBe('model-Q8_0.gguf');
  });
});

/** Bit-for-bit equal (vitest's deep equality walks 65,536 values slowly). */
const sameBits = (a: Float32Array, b: Float32Array) =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );
const str = (value: string): GgufValue => ({ type: 'string', value });
const u32 = (value: number): GgufValue => ({ type: 'u32', value });
const metadata = (entries: Record<string, GgufValue>) => new Map(Object.entries(entries));
const bytePieces = () =>
  Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);

/** A GGUF v3 file (alignment 32) from metadata and tensors' raw blocks. */
function writeGguf(
  meta: ReadonlyMap<string, GgufValue>,
  tensors: { name: string; id: number; ne: number[]; data: Uint8Array }[],
): Uint8Array {
  const parts: Uint8Array[] = [];
  let length = 0;
  const push = (bytes: Uint8Array) => {
    parts.push(bytes);
    length += bytes.byteLength;
  };
  const fixed = (n: number, write: (v: DataView) => void) => {
    const b = new Uint8Array(n);
    write(new DataView(b.buffer));
    push(b);
  };
  const u32w = (v: number) => {
    fixed(4, (d) => {
      d.setUint32(0, v, true);
    });
  };
  const u64w = (v: number | bigint) => {
    fixed(8, (d) => {
      d.setBigUint64(0, BigInt(v), true);
    });
  };
  const string = (s: string) => {
    const b = new TextEncoder().encode(s);
    u64w(b.byteLength);
    push(b);
  };
  const scalar = (type: string, v: unknown) => {
    const setters: Record<string, [number, (d: DataView) => void]> = {
      u8: [
        1,
        (d) => {
          d.setUint8(0, v as number);
        },
      ],
      i8: [
        1,
        (d) => {
          d.setInt8(0, v as number);
        },
      ],
      u16: [
        2,
        (d) => {
          d.setUint16(0, v as number, true);
        },
      ],
      i16: [
        2,
        (d) => {
          d.setInt16(0, v as number, true);
        },
      ],
      u32: [
        4,
        (d) => {
          d.setUint32(0, v as number, true);
        },
      ],
      i32: [
        4,
        (d) => {
          d.setInt32(0, v as number, true);
        },
      ],
      f32: [
        4,
        (d) => {
          d.setFloat32(0, v as number, true);
        },
      ],
      f64: [
        8,
        (d) => {
          d.setFloat64(0, v as number, true);
        },
      ],
      u64: [
        8,
        (d) => {
          d.setBigUint64(0, v as bigint, true);
        },
      ],
      i64: [
        8,
        (d) => {
          d.setBigInt64(0, v as bigint, true);
        },
      ],
      bool: [
        1,
        (d) => {
          d.setUint8(0, v ? 1 : 0);
        },
      ],
    };
    if (type === 'string') string(v as string);
    else fixed(...setters[type]);
  };
  push(new TextEncoder().encode('GGUF'));
  u32w(3);
  u64w(tensors.length);
  u64w(meta.size);
  for (const [key, v] of meta) {
    string(key);
    u32w(GGUF_VALUE_TYPE[v.type]);
    if (v.type === 'array') {
      u32w(GGUF_VALUE_TYPE[v.itemType]);
      u64w(v.value.length);
      for (const item of v.value as Iterable<unknown>) scalar(v.itemType, item);
    } else scalar(v.type, v.value);
  }
  const align = (n: number) => Math.ceil(n / 32) * 32;
  let offset = 0;
  for (const t of tensors) {
    string(t.name);
    u32w(t.ne.length);
    t.ne.forEach(u64w);
    u32w(t.id);
    u64w(offset);
    offset = align(offset + t.data.byteLength);
  }
  push(new Uint8Array(align(length) - length));
  for (const t of tensors) {
    push(t.data);
    push(new Uint8Array(align(t.data.byteLength) - t.data.byteLength));
  }
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}
