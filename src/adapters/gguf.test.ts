// GGUF LoRA export, read back by a small GGUF reader written here from the spec (ggml's
// docs/gguf.md), independent of the writer: header, key-values, tensor infos, alignment, data.
// Values are checked against the adapter: A as is, B un-permuted per head for q/k, and
// llama.cpp's alpha / r times B·A equal to PEFT's ΔW = s·B·A, module by module.
import { describe, expect, it } from 'vitest';
import { fixture } from '../testing/fixtures.ts';
import { randomArray, seededRandom } from '../testing/random.ts';
import { scaling } from './config.ts';
import { ggufLoraFile, type GgufHeads } from './gguf.ts';
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

const BLOCK: Record<string, string> = {
  q_proj: 'attn_q',
  k_proj: 'attn_k',
  v_proj: 'attn_v',
  o_proj: 'attn_output',
  gate_proj: 'ffn_gate',
  up_proj: 'ffn_up',
  down_proj: 'ffn_down',
};

/** The GGUF name llama.cpp expects for a module path, written out independently of gguf.ts. */
function expectedName(path: string): string {
  if (path === 'lm_head') return 'output.weight';
  const [, , layer, , module] = path.split('.');
  return `blk.${layer}.${BLOCK[module]}.weight`;
}

function fixtureAdapter(dir: string): PeftAdapter {
  const files = new Map(
    ['adapter_config.json', 'adapter_model.safetensors'].map((f) => [
      f,
      fixture(`adapters/${dir}/${f}`),
    ]),
  );
  return readPeftAdapter(files, dir);
}

/**
 * The checks every export must pass: layout by the spec, names and dims as llama.cpp expects, A
 * as is, llama.cpp's (alpha / r)·B un-permuted equal to PEFT's s·B, and for the modules `dense`
 * picks, (alpha / r)·B·A equal to PEFT's ΔW = s·B·A formed in f64.
 */
function checkExport(
  adapter: PeftAdapter,
  heads: Required<GgufHeads>,
  tolerance: number,
  dense: (path: string) => boolean,
) {
  const file = ggufLoraFile(adapter, { name: 'test', ...heads });
  const gguf = parseGguf(file.bytes);
  expect(gguf.magic).toBe('GGUF');
  expect(gguf.version).toBe(3);
  expect(gguf.kv.get('general.architecture')).toEqual({ type: 8, value: 'llama' });
  expect(gguf.kv.get('general.type')).toEqual({ type: 8, value: 'adapter' });
  expect(gguf.kv.get('adapter.type')).toEqual({ type: 8, value: 'lora' });
  expect(gguf.kv.get('adapter.lora.alpha')).toEqual({ type: 6, value: adapter.details.alpha });
  expect(gguf.kv.get('general.quantization_version')).toEqual({ type: 4, value: 2 });
  expect(gguf.tensors).toHaveLength(2 * adapter.modules.size);
  expect(file.tensors).toBe(gguf.tensors.length);

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
    expect([a.dims, b.dims]).toEqual([
      [inputs, m.rank],
      [m.rank, rows],
    ]);
    expect(gguf.values(a.name)).toEqual(m.a);
    const module = path.split('.').at(-1);
    const headCount = module === 'q_proj' ? heads.heads : module === 'k_proj' ? heads.kvHeads : 0;
    const stored = gguf.values(b.name);
    const hfB = headCount ? unpermuteRows(stored, rows, m.rank, headCount) : stored;
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
  it.each([
    ['smollm-135m-instruct/medai_TFM-HITESH_5epochs', 9, 3, 30],
    ['tinyllama-1.1b-chat/ARONA_minhmc2007', 32, 4, 22],
  ])('%s: llama.cpp names, dims, permuted q rows, B as is', (dir, heads, kvHeads, layers) => {
    const adapter = fixtureAdapter(dir);
    const { file, gguf } = checkExport(adapter, { heads, kvHeads }, 0, (path) =>
      path.startsWith('model.layers.0.'),
    );
    expect(gguf.tensors.slice(0, 4).map((t) => t.name)).toEqual([
      'blk.0.attn_q.weight.lora_a',
      'blk.0.attn_q.weight.lora_b',
      'blk.0.attn_v.weight.lora_a',
      'blk.0.attn_v.weight.lora_b',
    ]);
    expect(gguf.tensors.at(-1)!.name).toBe(`blk.${layers - 1}.attn_v.weight.lora_b`);
    expect(gguf.kv.get('general.name')?.value).toBe('test');
    expect(gguf.kv.get('general.base_model.0.repo_url')?.value).toBe(
      `https://huggingface.co/${adapter.baseModel}`,
    );
    // A plain LoRA needs no rescaling: v's B is stored bit for bit, q's B is a row permutation.
    expect(file.rescaled).toEqual([]);
    const v = adapter.modules.get('model.layers.0.self_attn.v_proj')!;
    expect(gguf.values('blk.0.attn_v.weight.lora_b')).toEqual(v.b);
    const q = adapter.modules.get('model.layers.0.self_attn.q_proj')!;
    const qB = gguf.values('blk.0.attn_q.weight.lora_b');
    expect(qB).not.toEqual(q.b);
    expect(unpermuteRows(qB, q.b.length / q.rank, q.rank, heads)).toEqual(q.b);
  });

  it('a random adapter on every module, with per-module ranks and alphas and rsLoRA, reproduces PEFT’s ΔW', () => {
    const random = seededRandom(11);
    const [hidden, heads, kvHeads, headDim, ff, vocab] = [16, 4, 2, 4, 12, 10];
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
    const { file, gguf } = checkExport(adapter, { heads, kvHeads }, 1e-6, () => true);
    // rsLoRA scales by alpha / √r, never llama.cpp's alpha / r: every B carries the ratio.
    expect(file.rescaled).toHaveLength(modules.size);
    expect(gguf.tensors.map((t) => t.name)).toContain('output.weight.lora_b');
    expect(gguf.tensors.map((t) => t.name)).toContain('blk.1.ffn_down.weight.lora_a');
  });

  it('refuses what llama.cpp cannot load, and q/k without head counts', () => {
    const adapter = fixtureAdapter('smollm-135m-instruct/medai_TFM-HITESH_5epochs');
    const options = { name: 'x', heads: 9, kvHeads: 3 };
    expect(() => ggufLoraFile(adapter, { name: 'x' })).toThrow(
      /permutes q_proj's rows within each attention head, so the export needs the base model's num_attention_heads \(--heads\)/,
    );
    expect(() => ggufLoraFile(adapter, { ...options, heads: 7 })).toThrow(
      /has 576 rows, which 7 heads of even size cannot split/,
    );
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
      /model.embed_tokens: no llama.cpp Llama tensor for this module .*embedding LoRA is not/,
    );
    const gpt2 = fixtureAdapter('gpt2/generated-causal-c_attn');
    expect(() => ggufLoraFile(gpt2, options)).toThrow(/transformer.h.0.attn.c_attn: no llama.cpp/);
  });
});
