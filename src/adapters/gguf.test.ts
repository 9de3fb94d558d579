// GGUF LoRA export, read back by a small GGUF reader written here from the spec (ggml's
// docs/gguf.md), independent of the writer: header, key-values, tensor infos, alignment, data.
// Names and architectures are written out here from gguf-py (constants.py, tensor_mapping.py),
// independently of the family files. Values are checked against the adapter: A as is, B
// un-permuted per head for q/k of the permuting families and as is for the others, and
// llama.cpp's alpha / r times B·A equal to PEFT's ΔW = s·B·A, module by module.
import { describe, expect, it } from 'vitest';
import type { ModelConfig } from '../model/config.ts';
import { parseHfConfig } from '../model/hf-config.ts';
import { fixture, fixtureJson } from '../testing/fixtures.ts';
import { randomArray, seededRandom } from '../testing/random.ts';
import { scaling } from './config.ts';
import { ggufLoraFile } from './gguf.ts';
import { readPeftAdapter, type AdapterModule, type PeftAdapter } from './peft-read.ts';

// ---- a GGUF reader, from the spec ---------------------------------------------------------

interface GgufKv {
  type: number;
  value: unknown;
}

interface GgufTensorInfo {
  name: string;
  dims: number[];
  type: number;
  offset: number;
}

interface ParsedGguf {
  magic: string;
  version: number;
  kv: Map<string, GgufKv>;
  tensors: GgufTensorInfo[];
  alignment: number;
  dataStart: number;
  /** F32 values of a tensor. */
  values(name: string): Float32Array;
}

function parseGguf(bytes: Uint8Array): ParsedGguf {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const u32 = () => ((at += 4), view.getUint32(at - 4, true));
  const u64 = () => {
    const v = view.getBigUint64(at, true);
    at += 8;
    expect(v).toBeLessThanOrEqual(BigInt(Number.MAX_SAFE_INTEGER));
    return Number(v);
  };
  const string = () => {
    const n = u64();
    at += n;
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(at - n, at));
  };
  const scalar: Record<number, () => unknown> = {
    0: () => view.getUint8((at += 1) - 1),
    1: () => view.getInt8((at += 1) - 1),
    2: () => view.getUint16((at += 2) - 2, true),
    3: () => view.getInt16((at += 2) - 2, true),
    4: u32,
    5: () => view.getInt32((at += 4) - 4, true),
    6: () => view.getFloat32((at += 4) - 4, true),
    7: () => view.getUint8((at += 1) - 1) === 1,
    8: string,
    10: u64,
    11: () => view.getBigInt64((at += 8) - 8, true),
    12: () => view.getFloat64((at += 8) - 8, true),
  };
  const value = (type: number): unknown => {
    if (type !== 9) return scalar[type]();
    const itemType = u32();
    return Array.from({ length: u64() }, () => value(itemType));
  };

  const magic = new TextDecoder().decode(bytes.subarray(0, 4));
  at = 4;
  const version = u32();
  const tensorCount = u64();
  const kvCount = u64();
  const kv = new Map<string, GgufKv>();
  for (let i = 0; i < kvCount; i++) {
    const key = string();
    const type = u32();
    kv.set(key, { type, value: value(type) });
  }
  const tensors: GgufTensorInfo[] = [];
  for (let i = 0; i < tensorCount; i++) {
    const name = string();
    const dims = Array.from({ length: u32() }, u64);
    tensors.push({ name, dims, type: u32(), offset: u64() });
  }
  const alignment = (kv.get('general.alignment')?.value as number | undefined) ?? 32;
  const dataStart = Math.ceil(at / alignment) * alignment;
  return {
    magic,
    version,
    kv,
    tensors,
    alignment,
    dataStart,
    values(name) {
      const t = tensors.find((x) => x.name === name);
      if (!t) throw new Error(`no tensor ${name}`);
      const count = t.dims.reduce((a, b) => a * b, 1);
      const start = dataStart + t.offset;
      return Float32Array.from({ length: count }, (_, i) => view.getFloat32(start + 4 * i, true));
    },
  };
}

// ---- helpers -------------------------------------------------------------------------------

/** HF row order from llama.cpp's: GGUF row 2i + t of a head is HF row t·d/2 + i. */
function unpermuteRows(b: Float32Array, rows: number, rank: number, heads: number): Float32Array {
  const size = rows / heads;
  const out = new Float32Array(b.length);
  for (let r = 0; r < rows; r++) {
    const head = Math.floor(r / size);
    const within = r % size;
    const hfRow = head * size + (within % 2) * (size / 2) + Math.floor(within / 2);
    out.set(b.subarray(r * rank, (r + 1) * rank), hfRow * rank);
  }
  return out;
}

/** s·B·A in f64, row-major out × in. */
function delta(b: Float32Array, a: Float32Array, rank: number, s: number): Float64Array {
  const out = b.length / rank;
  const inputs = a.length / rank;
  const d = new Float64Array(out * inputs);
  for (let o = 0; o < out; o++)
    for (let k = 0; k < rank; k++) {
      const bk = s * b[o * rank + k];
      for (let i = 0; i < inputs; i++) d[o * inputs + i] += bk * a[k * inputs + i];
    }
  return d;
}

function relativeError(x: Float64Array, y: Float64Array): number {
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < x.length; i++) {
    diff += (x[i] - y[i]) ** 2;
    norm += y[i] ** 2;
  }
  return Math.sqrt(diff / norm);
}

/**
 * llama.cpp per HF model_type: MODEL_ARCH_NAMES' architecture, and whether its converter permutes
 * q/k rows (LlamaModel.undo_permute, inherited by SmolLM3Model; Qwen2/Qwen3/Gemma3/Phi-3/GPT-2
 * have no permute).
 */
const LLAMA_CPP: Record<string, { arch: string; permuted: boolean }> = {
  llama: { arch: 'llama', permuted: true },
  qwen2: { arch: 'qwen2', permuted: false },
  qwen3: { arch: 'qwen3', permuted: false },
  gemma3_text: { arch: 'gemma3', permuted: false },
  smollm3: { arch: 'smollm3', permuted: true },
  phi3: { arch: 'phi3', permuted: false },
  gpt2: { arch: 'gpt2', permuted: false },
};

/** gguf-py's tensor_mapping.py: HF module path inside a layer → TENSOR_NAMES' name. */
const TENSOR: Record<string, string> = {
  'self_attn.q_proj': 'attn_q',
  'self_attn.k_proj': 'attn_k',
  'self_attn.v_proj': 'attn_v',
  'self_attn.o_proj': 'attn_output',
  'mlp.gate_proj': 'ffn_gate',
  'mlp.up_proj': 'ffn_up',
  'mlp.down_proj': 'ffn_down',
  'self_attn.qkv_proj': 'attn_qkv', // phi3
  'mlp.gate_up_proj': 'ffn_up', // phi3: gate and up fused, ffn_up of twice the width
  'attn.c_attn': 'attn_qkv', // gpt2
  'attn.c_proj': 'attn_output',
  'mlp.c_fc': 'ffn_up',
  'mlp.c_proj': 'ffn_down',
};

/** The GGUF name llama.cpp expects for a module path, written out independently of gguf.ts. */
function expectedName(path: string): string {
  if (path === 'lm_head') return 'output.weight';
  const [, layer, module] = /^(?:model\.layers|transformer\.h)\.(\d+)\.(.+)$/.exec(path)!;
  return `blk.${layer}.${TENSOR[module]}.weight`;
}

/** The heads q/k rows are permuted by in llama.cpp's file, or 0: kept in HF's order. */
function permutedHeads(path: string, config: ModelConfig): number {
  if (!LLAMA_CPP[config.modelType].permuted) return 0;
  if (path.endsWith('.q_proj')) return config.numHeads;
  return path.endsWith('.k_proj') ? config.numKvHeads : 0;
}

function adapterAt(dir: string): PeftAdapter {
  const files = new Map(
    ['adapter_config.json', 'adapter_model.safetensors'].map((f) => [f, fixture(`${dir}/${f}`)]),
  );
  return readPeftAdapter(files, dir);
}

const fixtureAdapter = (dir: string) => adapterAt(`adapters/${dir}`);

/** The team's arch fixture: its config and its PEFT adapter. */
function archFixture(dir: string): { config: ModelConfig; adapter: PeftAdapter } {
  return {
    config: parseHfConfig(fixtureJson(`models/arch/${dir}/config.json`)),
    adapter: adapterAt(`models/arch/${dir}/lora`),
  };
}

/**
 * The base weights' shapes as llama.cpp holds them (ggml ne: innermost first), from the
 * checkpoint's safetensors header: PyTorch [out, in] reversed, and GPT-2's Conv1D [in, out] as it
 * is, since its converter transposes those weights (GPT2Model.modify_tensors).
 */
function llamaCppShapes(dir: string): Map<string, number[]> {
  const bytes = fixture(`models/arch/${dir}/model.safetensors`);
  const length = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length))) as Record<
    string,
    { shape: number[] }
  >;
  const conv1d = /\.(c_attn|c_proj|c_fc)\.weight$/;
  return new Map(
    Object.entries(header)
      .filter(([name]) => name.endsWith('.weight'))
      .map(([name, { shape }]) => [
        name.slice(0, -'.weight'.length),
        conv1d.test(name) ? shape : [...shape].reverse(),
      ]),
  );
}

/** A ModelConfig from the few config.json values the export reads. */
const realConfig = (json: Record<string, unknown>) => parseHfConfig(json);

// The real base models' config.json values (the models are not in the repository).
const SMOLLM_135M = realConfig({
  model_type: 'llama',
  hidden_size: 576,
  intermediate_size: 1536,
  num_hidden_layers: 30,
  num_attention_heads: 9,
  num_key_value_heads: 3,
  vocab_size: 49152,
  tie_word_embeddings: true,
});
const TINYLLAMA_1_1B = realConfig({
  model_type: 'llama',
  hidden_size: 2048,
  intermediate_size: 5632,
  num_hidden_layers: 22,
  num_attention_heads: 32,
  num_key_value_heads: 4,
  vocab_size: 32000,
});
const QWEN2_5_0_5B = realConfig({
  model_type: 'qwen2',
  hidden_size: 896,
  intermediate_size: 4864,
  num_hidden_layers: 24,
  num_attention_heads: 14,
  num_key_value_heads: 2,
  head_dim: 64,
  vocab_size: 151936,
  tie_word_embeddings: true,
});

/**
 * The checks every export must pass: layout by the spec, the architecture and every name and dim
 * as llama.cpp expects, A as is, llama.cpp's (alpha / r)·B — un-permuted for the permuting
 * families, as is for the others — equal to PEFT's s·B, and for the modules `dense` picks,
 * (alpha / r)·B·A equal to PEFT's ΔW = s·B·A formed in f64.
 */
function checkExport(
  adapter: PeftAdapter,
  config: ModelConfig,
  tolerance: number,
  dense: (path: string) => boolean,
) {
  const file = ggufLoraFile(adapter, { name: 'test', config });
  const gguf = parseGguf(file.bytes);
  expect(gguf.magic).toBe('GGUF');
  expect(gguf.version).toBe(3);
  expect(gguf.kv.get('general.architecture')).toEqual({
    type: 8,
    value: LLAMA_CPP[config.modelType].arch,
  });
  expect(gguf.kv.get('general.type')).toEqual({ type: 8, value: 'adapter' });
  expect(gguf.kv.get('adapter.type')).toEqual({ type: 8, value: 'lora' });
  expect(gguf.kv.get('adapter.lora.alpha')).toEqual({ type: 6, value: adapter.details.alpha });
  expect(gguf.kv.get('general.quantization_version')).toEqual({ type: 4, value: 2 });
  expect(gguf.tensors).toHaveLength(2 * adapter.modules.size);
  expect(file.tensors).toBe(gguf.tensors.length);
  // By layer (the head last), each module's lora_a then lora_b.
  const layerOf = (name: string) => (name.startsWith('blk.') ? Number(name.split('.')[1]) : 1e9);
  const layers = gguf.tensors.map((t) => layerOf(t.name));
  expect(layers).toEqual([...layers].sort((x, y) => x - y));
  expect(gguf.tensors.map((t) => t.name.slice(-7))).toEqual(
    gguf.tensors.map((_, i) => (i % 2 ? '.lora_b' : '.lora_a')),
  );

  // Alignment: the data area and every tensor start on a multiple of 32; no overlaps; the file
  // ends with the last tensor's padding.
  expect(gguf.dataStart % gguf.alignment).toBe(0);
  let end = 0;
  for (const t of gguf.tensors) {
    expect(t.type).toBe(0);
    expect(t.offset % gguf.alignment).toBe(0);
    expect(t.offset).toBeGreaterThanOrEqual(end);
    end = t.offset + Math.ceil((t.dims[0] * t.dims[1] * 4) / 32) * 32;
  }
  expect(file.bytes.length).toBe(gguf.dataStart + end);

  const alpha = gguf.kv.get('adapter.lora.alpha')!.value as number;
  for (const [path, m] of adapter.modules) {
    const name = expectedName(path);
    const a = gguf.tensors.find((t) => t.name === `${name}.lora_a`)!;
    const b = gguf.tensors.find((t) => t.name === `${name}.lora_b`)!;
    const inputs = m.a.length / m.rank;
    const rows = m.b.length / m.rank;
    expect([a.dims, b.dims], path).toEqual([
      [inputs, m.rank],
      [m.rank, rows],
    ]);
    expect(gguf.values(a.name)).toEqual(m.a);
    const heads = permutedHeads(path, config);
    const stored = gguf.values(b.name);
    const hfB = heads ? unpermuteRows(stored, rows, m.rank, heads) : stored;
    if (heads) expect(stored, path).not.toEqual(m.b);
    // llama.cpp: scale = alpha / rank with rank = lora_b's ne[0], in f32.
    const llamaScale = Math.fround(alpha / b.dims[0]);
    const scaledB = (x: Float32Array, s: number) => Float64Array.from(x, (v) => v * s);
    expect(
      relativeError(scaledB(hfB, llamaScale), scaledB(m.b, m.scale)),
      path,
    ).toBeLessThanOrEqual(tolerance);
    if (dense(path))
      expect(
        relativeError(delta(hfB, m.a, m.rank, llamaScale), delta(m.b, m.a, m.rank, m.scale)),
        path,
      ).toBeLessThanOrEqual(tolerance);
  }
  return { file, gguf };
}

// ---- tests ---------------------------------------------------------------------------------

describe('GGUF LoRA export', () => {
  it.each(['llama', 'llama3', 'qwen3', 'gemma3_text', 'smollm3', 'phi3', 'gpt2'])(
    'the %s fixture: its llama.cpp architecture, names and shapes, q/k permuted only for the Llama family',
    (dir) => {
      const { config, adapter } = archFixture(dir);
      const { file, gguf } = checkExport(adapter, config, 0, (path) => path.includes('.0.'));
      expect(file.rescaled).toEqual([]);
      // What llama.cpp's loader checks against the base weight (llama-adapter.cpp): A's ne[0]
      // and B's ne[1] are the weight's, A's ne[1] is B's ne[0].
      const shapes = llamaCppShapes(dir);
      for (const path of adapter.modules.keys()) {
        const name = expectedName(path);
        const a = gguf.tensors.find((t) => t.name === `${name}.lora_a`)!;
        const b = gguf.tensors.find((t) => t.name === `${name}.lora_b`)!;
        expect([a.dims[0], b.dims[1]], path).toEqual(shapes.get(path));
        expect(a.dims[1]).toBe(b.dims[0]);
      }
      // Families llama.cpp does not permute get every B bit for bit.
      if (!LLAMA_CPP[config.modelType].permuted)
        for (const [path, m] of adapter.modules)
          expect(gguf.values(`${expectedName(path)}.lora_b`), path).toEqual(m.b);
    },
  );

  it('names every module of the fused and Conv1D families as gguf-py does', () => {
    const names = (dir: string) => {
      const { config, adapter } = archFixture(dir);
      const file = ggufLoraFile(adapter, { name: 'x', config });
      return new Set(parseGguf(file.bytes).tensors.map((t) => t.name.replace(/^blk\.\d+\./, '')));
    };
    expect(names('phi3')).toEqual(
      new Set(
        ['attn_qkv', 'attn_output', 'ffn_up', 'ffn_down'].flatMap((t) => [
          `${t}.weight.lora_a`,
          `${t}.weight.lora_b`,
        ]),
      ),
    );
    expect(names('gpt2')).toEqual(names('phi3'));
  });

  // Exact but for r = 6, where alpha / r = 32 / 6 is rounded to f32 by llama.cpp.
  it.each([
    ['smollm-135m-instruct/medai_TFM-HITESH_5epochs', SMOLLM_135M, 0],
    ['tinyllama-1.1b-chat/ARONA_minhmc2007', TINYLLAMA_1_1B, 0],
    ['qwen2.5-0.5b-instruct/MatthewZhang473_20251017_101834_r6_alpha32', QWEN2_5_0_5B, 6e-8],
  ])(
    '%s: llama.cpp names, dims, q rows permuted for Llama only, B as is',
    (dir, config, tolerance) => {
      const adapter = fixtureAdapter(dir);
      const { file, gguf } = checkExport(adapter, config, tolerance, (path) =>
        path.startsWith('model.layers.0.'),
      );
      expect(gguf.tensors.slice(0, 4).map((t) => t.name)).toEqual([
        'blk.0.attn_q.weight.lora_a',
        'blk.0.attn_q.weight.lora_b',
        'blk.0.attn_v.weight.lora_a',
        'blk.0.attn_v.weight.lora_b',
      ]);
      expect(gguf.tensors.at(-1)!.name).toBe(`blk.${config.numLayers - 1}.attn_v.weight.lora_b`);
      expect(gguf.kv.get('general.name')?.value).toBe('test');
      expect(gguf.kv.get('general.base_model.0.repo_url')?.value).toBe(
        `https://huggingface.co/${adapter.baseModel}`,
      );
      // A plain LoRA needs no rescaling: v's B is stored bit for bit, q's B is a row permutation
      // for the Llama family and stored as is for Qwen2.
      expect(file.rescaled).toEqual([]);
      const v = adapter.modules.get('model.layers.0.self_attn.v_proj')!;
      expect(gguf.values('blk.0.attn_v.weight.lora_b')).toEqual(v.b);
      const q = adapter.modules.get('model.layers.0.self_attn.q_proj')!;
      const qB = gguf.values('blk.0.attn_q.weight.lora_b');
      if (config.modelType === 'qwen2') expect(qB).toEqual(q.b);
      else expect(unpermuteRows(qB, q.b.length / q.rank, q.rank, config.numHeads)).toEqual(q.b);
    },
  );

  it('a Qwen2.5 adapter names qwen2 and keeps HF’s q/k order; the same numbers as Llama differ only there', () => {
    const adapter = fixtureAdapter(
      'qwen2.5-0.5b-instruct/MatthewZhang473_20251017_101834_r6_alpha32',
    );
    const asQwen = parseGguf(ggufLoraFile(adapter, { name: 'x', config: QWEN2_5_0_5B }).bytes);
    const asLlama = parseGguf(
      ggufLoraFile(adapter, {
        name: 'x',
        config: realConfig({ ...QWEN2_5_0_5B.source, model_type: 'llama' }),
      }).bytes,
    );
    expect(asQwen.kv.get('general.architecture')?.value).toBe('qwen2');
    expect(asLlama.kv.get('general.architecture')?.value).toBe('llama');
    expect(asQwen.tensors.map((t) => [t.name, t.dims])).toEqual(
      asLlama.tensors.map((t) => [t.name, t.dims]),
    );
    // Only q's B differs: permuted for Llama, HF's order for Qwen2.
    for (const t of asQwen.tensors)
      if (/attn_q\.weight\.lora_b$/.test(t.name))
        expect(asQwen.values(t.name), t.name).not.toEqual(asLlama.values(t.name));
      else expect(asQwen.values(t.name), t.name).toEqual(asLlama.values(t.name));
  });

  it('a random adapter on every module, with per-module ranks and alphas and rsLoRA, reproduces PEFT’s ΔW', () => {
    const random = seededRandom(11);
    const [hidden, heads, kvHeads, headDim, ff, vocab] = [16, 4, 2, 4, 12, 10];
    const config = realConfig({
      model_type: 'llama',
      hidden_size: hidden,
      intermediate_size: ff,
      num_hidden_layers: 2,
      num_attention_heads: heads,
      num_key_value_heads: kvHeads,
      head_dim: headDim,
      vocab_size: vocab,
    });
    const shapes: Record<string, [number, number]> = {
      q_proj: [heads * headDim, hidden],
      k_proj: [kvHeads * headDim, hidden],
      v_proj: [kvHeads * headDim, hidden],
      o_proj: [hidden, heads * headDim],
      gate_proj: [ff, hidden],
      up_proj: [ff, hidden],
      down_proj: [hidden, ff],
    };
    const modules = new Map<string, AdapterModule>();
    const add = (path: string, [out, inputs]: [number, number], rank: number, alpha: number) => {
      const a = randomArray(random, rank * inputs);
      const b = randomArray(random, out * rank);
      modules.set(path, { a, b, rank, scale: scaling(alpha, rank, true) });
    };
    for (const layer of [0, 1])
      for (const [module, shape] of Object.entries(shapes)) {
        const section = ['gate_proj', 'up_proj', 'down_proj'].includes(module)
          ? 'mlp'
          : 'self_attn';
        add(
          `model.layers.${layer}.${section}.${module}`,
          shape,
          2 + ((layer + module.length) % 3),
          6,
        );
      }
    add('lm_head', [vocab, hidden], 3, 1.5);
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
    const { file, gguf } = checkExport(adapter, config, 1e-6, () => true);
    // rsLoRA scales by alpha / √r, never llama.cpp's alpha / r: every B carries the ratio.
    expect(file.rescaled).toHaveLength(modules.size);
    expect(gguf.tensors.map((t) => t.name)).toContain('output.weight.lora_b');
    expect(gguf.tensors.map((t) => t.name)).toContain('blk.1.ffn_down.weight.lora_a');
    // A tied head is llama.cpp's token embedding: no output.weight to adapt.
    expect(() =>
      ggufLoraFile(adapter, {
        name: 'x',
        config: realConfig({ ...config.source, tie_word_embeddings: true }),
      }),
    ).toThrow(/lm_head: the base model ties its output head to the token embedding/);
  });

  it('refuses what llama.cpp cannot load, and an adapter that does not fit the base model, by name', () => {
    const adapter = fixtureAdapter('smollm-135m-instruct/medai_TFM-HITESH_5epochs');
    const options = { name: 'x', config: SMOLLM_135M };
    const dora = { ...adapter, details: { ...adapter.details, variant: 'dora' as const } };
    expect(() => ggufLoraFile(dora, options)).toThrow(/is a DoRA adapter/);
    const saved = {
      ...adapter,
      fullWeights: new Map([['lm_head.weight', { shape: [1], data: new Float32Array(1) }]]),
    };
    expect(() => ggufLoraFile(saved, options)).toThrow(/modules_to_save: lm_head.weight/);
    const embedding = {
      ...adapter,
      modules: new Map([['model.embed_tokens', adapter.modules.values().next().value!]]),
    };
    expect(() => ggufLoraFile(embedding, options)).toThrow(
      /model.embed_tokens: no llama.cpp llama tensor for this module .*embedding LoRA is not/,
    );
    // Another base model: the wrong family, or the right one with other sizes.
    const gpt2 = archFixture('gpt2');
    expect(() => ggufLoraFile(gpt2.adapter, options)).toThrow(
      /transformer.h.0.attn.c_attn: no llama.cpp llama tensor for this module .*exported: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, lm_head/,
    );
    expect(() => ggufLoraFile(adapter, { name: 'x', config: gpt2.config })).toThrow(
      /model.layers.0.self_attn.q_proj: no llama.cpp gpt2 tensor for this module .*exported: c_attn, attn.c_proj, c_fc, mlp.c_proj, lm_head/,
    );
    expect(() => ggufLoraFile(adapter, { name: 'x', config: TINYLLAMA_1_1B })).toThrow(
      /model.layers.0.self_attn.q_proj does not fit the base model: the adapter's factors make a 576 × 576 update, the model's weight is 2048 × 2048/,
    );
    // Past the model's last layer.
    const deeper = realConfig({ ...SMOLLM_135M.source, num_hidden_layers: 20 });
    expect(() => ggufLoraFile(adapter, { name: 'x', config: deeper })).toThrow(
      /model.layers.2\d.self_attn.[qv]_proj: no llama.cpp llama tensor for this module of the 20-layer base model/,
    );
  });
});
