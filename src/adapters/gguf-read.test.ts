// Reading GGUF LoRA files back (gguf-read.ts) as the inverse of our export (gguf.ts): every arch
// fixture's PEFT adapter, written as GGUF for its base model and read back with that model's
// config, gives PEFT's ΔW = s·B·A per module (and, for these plain adapters, A and B bit for bit:
// the q/k un-permutation is exact); a random adapter whose PEFT scaling llama.cpp's alpha / r
// cannot express (per-module ranks and alphas, rsLoRA, lm_head) to f32 precision. Hostile files,
// written byte by byte here with one thing wrong each, are refused in one line naming the file.
import { describe, expect, it } from 'vitest';
import type { ModelConfig } from '../model/config.ts';
import { FormatError } from '../model/errors.ts';
import { exampleConfig } from '../model/families.ts';
import { GGUF_VALUE_TYPE } from '../model/gguf/constants.ts';
import { parseHfConfig } from '../model/hf-config.ts';
import { fixture, fixtureJson } from '../testing/fixtures.ts';
import { randomArray, seededRandom } from '../testing/random.ts';
import { scaling } from './config.ts';
import { ggufLoraFile } from './gguf.ts';
import { readGgufLora } from './gguf-read.ts';
import { readPeftAdapter, type AdapterModule, type PeftAdapter } from './peft-read.ts';

const ARCH_FIXTURES = [
  'llama',
  'llama-linear',
  'llama3',
  'qwen3',
  'qwen3-bf16',
  'gemma3_text',
  'smollm3',
  'phi3',
  'gpt2',
];

function archFixture(dir: string): { config: ModelConfig; adapter: PeftAdapter } {
  const files = new Map(
    ['adapter_config.json', 'adapter_model.safetensors'].map((f) => [
      f,
      fixture(`models/arch/${dir}/lora/${f}`),
    ]),
  );
  return {
    config: parseHfConfig(fixtureJson(`models/arch/${dir}/config.json`)),
    adapter: readPeftAdapter(files, 'lora'),
  };
}

/** s·B·A in f64, row-major out × in. */
function delta(m: AdapterModule): Float64Array {
  const out = m.b.length / m.rank;
  const inputs = m.a.length / m.rank;
  const d = new Float64Array(out * inputs);
  for (let o = 0; o < out; o++)
    for (let k = 0; k < m.rank; k++) {
      const bk = m.scale * m.b[o * m.rank + k];
      for (let i = 0; i < inputs; i++) d[o * inputs + i] += bk * m.a[k * inputs + i];
    }
  return d;
}

/** ‖x − y‖ / ‖y‖. */
function relativeError(x: Float64Array, y: Float64Array): number {
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < x.length; i++) {
    diff += (x[i] - y[i]) ** 2;
    norm += y[i] ** 2;
  }
  return Math.sqrt(diff / norm);
}

/** The largest relative ΔW difference over the modules; both must adapt the same ones. */
function worstDelta(read: PeftAdapter, peft: PeftAdapter): number {
  expect([...read.modules.keys()].sort()).toEqual([...peft.modules.keys()].sort());
  let worst = 0;
  for (const [path, m] of peft.modules)
    worst = Math.max(worst, relativeError(delta(read.modules.get(path)!), delta(m)));
  return worst;
}

describe('a GGUF LoRA read back is the PEFT adapter it was written from', () => {
  it.each(ARCH_FIXTURES)('%s', (dir) => {
    const { config, adapter } = archFixture(dir);
    const { bytes } = ggufLoraFile(adapter, { name: 'lora', config });
    const read = readGgufLora(bytes, 'lora.gguf', config);
    // Plain LoRA (alpha 8, r 4): llama.cpp's scale is PEFT's, so the factors come back as they
    // were: A as stored, B un-permuted (Llama, SmolLM3) or as stored.
    for (const [path, m] of adapter.modules) {
      const r = read.modules.get(path)!;
      expect(r.rank, path).toBe(m.rank);
      expect(r.scale, path).toBe(m.scale);
      expect(r.a, path).toEqual(m.a);
      expect(r.b, path).toEqual(m.b);
    }
    expect(worstDelta(read, adapter)).toBe(0);
    expect(read.details).toMatchObject({
      rank: 4,
      alpha: 8,
      rslora: false,
      variant: 'lora',
      modules: adapter.modules.size,
      fanInFanOut: dir === 'gpt2',
    });
    // The file's order (forward order), not the safetensors' (by name).
    expect(read.details.targets.toSorted()).toEqual(adapter.details.targets.toSorted());
    expect(read.fullWeights.size).toBe(0);
    expect(read.nonFinite).toEqual([]);
  });

  it('a random adapter with per-module ranks and alphas, rsLoRA and lm_head: ΔW to f32 precision', () => {
    const random = seededRandom(5);
    // GQA heads (4 and 2) so that q and k are un-permuted by different counts.
    const config = exampleConfig('llama', {
      hidden_size: 16,
      intermediate_size: 12,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      head_dim: 4,
      vocab_size: 10,
      tie_word_embeddings: false,
    });
    const modules = new Map<string, AdapterModule>();
    const add = (path: string, out: number, inputs: number, rank: number, alpha: number) => {
      const a = randomArray(random, rank * inputs);
      const b = randomArray(random, out * rank);
      modules.set(path, { a, b, rank, scale: scaling(alpha, rank, true) });
    };
    for (const layer of [0, 1])
      for (const m of config.arch.modules)
        add(`model.layers.${layer}.${m.path}`, m.out, m.in, 2 + ((layer + m.name.length) % 3), 6);
    add('lm_head', 10, 16, 3, 1.5);
    const adapter: PeftAdapter = {
      name: 'random',
      baseModel: 'test/tiny-llama',
      modules,
      fullWeights: new Map(),
      details: {
        rank: 4,
        alpha: 6,
        rslora: true,
        modules: modules.size,
        targets: [],
        variant: 'lora',
      },
      nonFinite: [],
    };
    const file = ggufLoraFile(adapter, { name: 'random', config });
    expect(file.rescaled).toHaveLength(modules.size);
    const read = readGgufLora(file.bytes, 'random.gguf', config);
    // B carries s_PEFT / (alpha / r), rounded to f32 once.
    expect(worstDelta(read, adapter)).toBeLessThan(1e-6);
    expect(read.baseModel).toBe('test/tiny-llama');
    // llama.cpp's scale: the file's alpha (6) over the module's rank (2 for layer 0's q_proj).
    expect(read.modules.get('model.layers.0.self_attn.q_proj')).toMatchObject({
      rank: 2,
      scale: 3,
    });
  });
});

// ---- hostile files -------------------------------------------------------------------------

type Value =
  | { type: 'string'; value: string }
  | { type: 'u32' | 'f32'; value: number }
  | { type: 'bool'; value: boolean };

interface Tensor {
  name: string;
  /** ggml order. */
  ne: number[];
  /** ggml type id: 0 F32, 1 F16. */
  type?: number;
}

/** A GGUF v3 file as the spec lays it out, F32 tensors filled with 0.5, aligned to 32. */
function ggufBytes(kv: [string, Value][], tensors: Tensor[]): Uint8Array {
  const parts: number[] = [];
  const u32 = (v: number) => {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v, true);
    parts.push(...b);
  };
  const u64 = (v: number) => {
    u32(v);
    u32(0);
  };
  const str = (s: string) => {
    const b = new TextEncoder().encode(s);
    u64(b.length);
    parts.push(...b);
  };
  const pad = () => {
    while (parts.length % 32 !== 0) parts.push(0);
  };
  u32(0x46554747);
  u32(3);
  u64(tensors.length);
  u64(kv.length);
  for (const [key, v] of kv) {
    str(key);
    u32(GGUF_VALUE_TYPE[v.type]);
    if (v.type === 'string') str(v.value);
    else if (v.type === 'bool') parts.push(v.value ? 1 : 0);
    else if (v.type === 'u32') u32(v.value);
    else {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setFloat32(0, v.value, true);
      parts.push(...b);
    }
  }
  const sizes = tensors.map((t) => Math.ceil((t.ne.reduce((a, b) => a * b, 1) * 4) / 32) * 32);
  let offset = 0;
  tensors.forEach((t, i) => {
    str(t.name);
    u32(t.ne.length);
    t.ne.forEach(u64);
    u32(t.type ?? 0);
    u64(offset);
    offset += sizes[i];
  });
  pad();
  const header = parts.length;
  const out = new Uint8Array(header + offset);
  out.set(parts);
  new Float32Array(out.buffer, header, offset / 4).fill(0.5);
  return out;
}

describe('hostile GGUF LoRA files are refused in one line', () => {
  // The llama arch fixture's sizes, read off its config.
  const { config } = archFixture('llama');
  const q = config.arch.modules.find((m) => m.name === 'q_proj')!;
  const lora: [string, Value][] = [
    ['general.architecture', { type: 'string', value: 'llama' }],
    ['general.type', { type: 'string', value: 'adapter' }],
    ['adapter.type', { type: 'string', value: 'lora' }],
    ['adapter.lora.alpha', { type: 'f32', value: 8 }],
  ];
  const with_ = (key: string, value: Value | null) =>
    lora.flatMap(([k, v]): [string, Value][] =>
      k !== key ? [[k, v]] : value === null ? [] : [[k, value]],
    );
  const pair = (base: string, rank = 2, inputs = q.in, out = q.out): Tensor[] => [
    { name: `${base}.lora_a`, ne: [inputs, rank] },
    { name: `${base}.lora_b`, ne: [rank, out] },
  ];
  const good = pair('blk.0.attn_q.weight');

  const refused = (bytes: Uint8Array, problem: RegExp) => {
    let error: unknown;
    try {
      readGgufLora(bytes, 'bad.gguf', config);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(FormatError);
    const message = (error as Error).message;
    expect(message.startsWith('bad.gguf: ')).toBe(true);
    expect(message).not.toContain('\n');
    expect(message).toMatch(problem);
  };

  it('the well-formed file they are made from reads', () => {
    const read = readGgufLora(ggufBytes(lora, good), 'good.gguf', config);
    const m = read.modules.get('model.layers.0.self_attn.q_proj')!;
    expect(m).toMatchObject({ rank: 2, scale: 4 });
    expect(m.b.every((v) => v === 0.5)).toBe(true);
  });

  it.each<[string, () => Uint8Array, RegExp]>([
    ['not GGUF', () => new TextEncoder().encode('{"not": "gguf"}'), /not a GGUF file/],
    ['truncated', () => ggufBytes(lora, good).subarray(0, 300), /truncated/],
    [
      'a GGUF model',
      () => fixture('models/gguf/llama/model-Q4_K_M.gguf'),
      /general.type is missing, not "adapter": not a GGUF LoRA \(a GGUF model goes to --model\)/,
    ],
    [
      'general.type model',
      () => ggufBytes(with_('general.type', { type: 'string', value: 'model' }), good),
      /general.type is "model", not "adapter"/,
    ],
    [
      'general.type not a string',
      () => ggufBytes(with_('general.type', { type: 'u32', value: 1 }), good),
      /general.type is a u32, not "adapter"/,
    ],
    [
      'an aLoRA',
      () => ggufBytes(with_('adapter.type', { type: 'string', value: 'alora' }), good),
      /adapter.type is "alora"; only "lora"/,
    ],
    [
      'no adapter.type',
      () => ggufBytes(with_('adapter.type', null), good),
      /"adapter.type" is missing/,
    ],
    [
      'another architecture',
      () => ggufBytes(with_('general.architecture', { type: 'string', value: 'qwen2' }), good),
      /a LoRA for llama.cpp architecture "qwen2", but the model is "llama"/,
    ],
    [
      'alpha not an f32',
      () => ggufBytes(with_('adapter.lora.alpha', { type: 'u32', value: 8 }), good),
      /"adapter.lora.alpha" must be a finite f32/,
    ],
    [
      'alpha NaN',
      () => ggufBytes(with_('adapter.lora.alpha', { type: 'f32', value: NaN }), good),
      /"adapter.lora.alpha" must be a finite f32/,
    ],
    [
      'a norm tensor',
      () => ggufBytes(lora, [...good, { name: 'blk.0.attn_norm.weight', ne: [q.in] }]),
      /tensor "blk.0.attn_norm.weight", which is not a LoRA factor/,
    ],
    [
      'a layer past the model',
      () => ggufBytes(lora, pair(`blk.${config.numLayers}.attn_q.weight`)),
      new RegExp(`base model has no adaptable tensor "blk.${config.numLayers}.attn_q.weight"`),
    ],
    [
      'embedding LoRA',
      () => ggufBytes(lora, pair('token_embd.weight', 2, config.vocabSize, config.hiddenSize)),
      /no adaptable tensor "token_embd.weight" \(embedding LoRA is not read\)/,
    ],
    [
      'lora_a alone',
      () => ggufBytes(lora, good.slice(0, 1)),
      /only one of blk.0.attn_q.weight's LoRA factors/,
    ],
    [
      'ranks that differ',
      () => ggufBytes(lora, [good[0], { name: good[1].name, ne: [3, q.out] }]),
      /lora_a is \[\d+, 2\] and lora_b \[3, \d+\].*\[in, r\] and \[r, out\]/,
    ],
    [
      'a 3-D factor',
      () => ggufBytes(lora, [{ name: good[0].name, ne: [q.in, 2, 1] }, good[1]]),
      /must be \[in, r\] and \[r, out\]/,
    ],
    [
      'factors of another model',
      () => ggufBytes(lora, pair('blk.0.attn_q.weight', 2, q.in + 1)),
      /does not fit the base model/,
    ],
    ['no tensors', () => ggufBytes(lora, []), /holds no LoRA tensors/],
  ])('%s', (_, bytes, problem) => {
    refused(bytes(), problem);
  });

  it('output.weight on a model whose head is the tied embedding', () => {
    const tied = parseHfConfig({ ...config.source, tie_word_embeddings: true });
    expect(() =>
      readGgufLora(
        ggufBytes(lora, pair('output.weight', 2, config.hiddenSize, config.vocabSize)),
        'bad.gguf',
        tied,
      ),
    ).toThrow(/no adaptable tensor "output.weight"/);
  });
});
