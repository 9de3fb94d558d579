// A PEFT LoRA adapter as a GGUF LoRA file for llama.cpp (`llama-cli --lora FILE.gguf`), laid out
// as llama.cpp's convert_lora_to_gguf.py writes one for a Llama model (docs/gguf.md says what was
// checked against its sources):
// - GGUF v3, little-endian: magic, version, tensor and key-value counts, the key-values, the
//   tensor infos, then the data, every tensor starting at a multiple of 32 bytes (the default
//   alignment, so general.alignment is not written, as the script does not).
// - Key-values: general.architecture "llama", general.type "adapter", adapter.type "lora",
//   general.name, the base model, adapter.lora.alpha (f32), general.quantization_version 2.
// - Per module `blk.N.attn_q.weight.lora_a` (A, r × in) and `….lora_b` (B, out × r), F32, with
//   ggml's dimensions innermost first (A: [in, r], B: [r, out]) and the rows as PyTorch stores them.
// - q_proj and k_proj: llama.cpp's Llama runs RoPE on adjacent pairs, HF's on the two halves of
//   each head, so the script permutes those weights' rows per head; for a LoRA only B has rows:
//   within each head, row (i, half t) moves to 2i + t. That needs the base model's head counts.
// - Scaling: llama.cpp applies alpha / r with one alpha for the file and r read from each B; PEFT
//   applies per-module alpha (alpha_pattern) and alpha / √r under rsLoRA. Each B is multiplied by
//   s_PEFT / (alpha / r), so llama.cpp's scaling reproduces PEFT's ΔW = s·B·A exactly (a factor of
//   1, B untouched, for a plain LoRA). The script itself writes B as is and so gets those wrong.
import type { PeftAdapter } from './peft-read.ts';
import { ggufRefusal } from './variants.ts';

const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
const GGUF_VERSION = 3;
const ALIGNMENT = 32;
/** ggml's quantization format version, written by every converter (GGML_QUANT_VERSION). */
const QUANTIZATION_VERSION = 2;
const GGML_TYPE_F32 = 0;

/** llama.cpp's names for the Llama modules (gguf-py's MODEL_TENSOR names for MODEL_ARCH.LLAMA). */
const BLOCK_TENSORS: Readonly<Record<string, string>> = {
  q_proj: 'attn_q',
  k_proj: 'attn_k',
  v_proj: 'attn_v',
  o_proj: 'attn_output',
  gate_proj: 'ffn_gate',
  up_proj: 'ffn_up',
  down_proj: 'ffn_down',
};
const LAYER_MODULE = /^model\.layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)$/;

export interface GgufHeads {
  /** The base model's num_attention_heads: q_proj's rows are permuted within each head. */
  heads?: number;
  /** num_key_value_heads: likewise for k_proj. */
  kvHeads?: number;
}

export interface GgufExportOptions extends GgufHeads {
  /** general.name. */
  name: string;
}

export interface GgufExport {
  bytes: Uint8Array;
  /** Tensors written: lora_a and lora_b per module. */
  tensors: number;
  /** adapter.lora.alpha as written (f32). */
  alpha: number;
  /** Modules whose B carries a scaling other than alpha / r (rank_pattern, alpha_pattern, rsLoRA). */
  rescaled: string[];
}

type MetadataValue =
  | { type: 'string'; value: string }
  | { type: 'u32'; value: number }
  | { type: 'f32'; value: number };

/** gguf_metadata_value_type codes. */
const VALUE_TYPE = { u32: 4, f32: 6, string: 8 } as const;

interface GgufTensor {
  name: string;
  /** ggml order: ne0 (innermost, contiguous) first. */
  dims: number[];
  data: Float32Array;
}

function refuseUnexportable(adapter: PeftAdapter): void {
  const refusal = ggufRefusal(adapter.name, adapter.details.variant);
  if (refusal) throw new RangeError(refusal);
  if (adapter.fullWeights.size > 0)
    throw new RangeError(
      `${adapter.name} stores whole tensors (modules_to_save: ${[...adapter.fullWeights.keys()].join(', ')}), which a GGUF LoRA cannot carry`,
    );
}

/** `blk.3.attn_q.weight` for `model.layers.3.self_attn.q_proj`, `output.weight` for lm_head. */
function llamaCppName(path: string): { name: string; module: string } {
  if (path === 'lm_head') return { name: 'output.weight', module: path };
  const match = LAYER_MODULE.exec(path);
  const tensor = match ? BLOCK_TENSORS[match[2]] : undefined;
  if (!match || !tensor)
    throw new RangeError(
      `${path}: no llama.cpp Llama tensor for this module (exported: ${Object.keys(BLOCK_TENSORS).join(', ')}, lm_head; embedding LoRA is not)`,
    );
  return { name: `blk.${match[1]}.${tensor}.weight`, module: match[2] };
}

/** Heads whose rows llama.cpp permutes for this module; null for modules it leaves alone. */
function permutedHeads(
  module: string,
  path: string,
  rows: number,
  heads: GgufHeads,
): number | null {
  if (module !== 'q_proj' && module !== 'k_proj') return null;
  const [count, config] =
    module === 'q_proj'
      ? [heads.heads, 'num_attention_heads (--heads)']
      : [heads.kvHeads, 'num_key_value_heads (--kv-heads)'];
  if (count === undefined)
    throw new RangeError(
      `${path}: llama.cpp permutes ${module}'s rows within each attention head, so the export needs the base model's ${config}`,
    );
  if (!Number.isInteger(count) || count < 1 || rows % (2 * count) !== 0)
    throw new RangeError(
      `${path} has ${rows} rows, which ${count} heads of even size cannot split`,
    );
  return count;
}

/**
 * B's rows as llama.cpp's converter reorders q/k weights (LlamaModel.permute): within each head
 * of size d, the row at half t, position i (HF: t·d/2 + i) goes to 2i + t.
 */
function permuteRows(b: Float32Array, rows: number, rank: number, heads: number): Float32Array {
  const size = rows / heads;
  const half = size / 2;
  const out = new Float32Array(b.length);
  for (let h = 0; h < heads; h++)
    for (let t = 0; t < 2; t++)
      for (let i = 0; i < half; i++) {
        const from = (h * size + t * half + i) * rank;
        out.set(b.subarray(from, from + rank), (h * size + 2 * i + t) * rank);
      }
  return out;
}

function scaled(values: Float32Array, factor: number): Float32Array {
  return factor === 1 ? values : values.map((v) => v * factor);
}

function layerOf(path: string): number {
  const match = LAYER_MODULE.exec(path);
  return match ? Number(match[1]) : Infinity;
}

/** The lora_a / lora_b pairs, by layer then module, with B rescaled and permuted. */
function loraTensors(
  adapter: PeftAdapter,
  alpha: number,
  heads: GgufHeads,
): { tensors: GgufTensor[]; rescaled: string[] } {
  const tensors: GgufTensor[] = [];
  const rescaled: string[] = [];
  const named = [...adapter.modules].map(([path, m]) => ({ path, m, ...llamaCppName(path) }));
  const order = Object.keys(BLOCK_TENSORS);
  named.sort(
    (x, y) =>
      layerOf(x.path) - layerOf(y.path) || order.indexOf(x.module) - order.indexOf(y.module),
  );
  for (const { path, m, name, module } of named) {
    const inputs = m.a.length / m.rank;
    const rows = m.b.length / m.rank;
    // llama.cpp computes alpha / r in f32; where PEFT's scaling differs in f32, B carries the ratio.
    const llamaScale = alpha / m.rank;
    const factor = Math.fround(m.scale) === Math.fround(llamaScale) ? 1 : m.scale / llamaScale;
    if (factor !== 1) rescaled.push(path);
    const permuted = permutedHeads(module, path, rows, heads);
    const b = scaled(m.b, factor);
    tensors.push(
      { name: `${name}.lora_a`, dims: [inputs, m.rank], data: m.a },
      {
        name: `${name}.lora_b`,
        dims: [m.rank, rows],
        data: permuted === null ? b : permuteRows(b, rows, m.rank, permuted),
      },
    );
  }
  return { tensors, rescaled };
}

/**
 * general.base_model.0.* from an HF id `org/name`. The script takes these from the model card's
 * base_model, title-cased by its naming heuristics; the id's parts are written as they are.
 */
function baseModelMetadata(id: string | null): [string, MetadataValue][] {
  const match = id === null ? null : /^([\w.-]+)\/([\w.-]+)$/.exec(id);
  if (!match) return [];
  return [
    ['general.base_model.count', { type: 'u32', value: 1 }],
    ['general.base_model.0.name', { type: 'string', value: match[2] }],
    ['general.base_model.0.organization', { type: 'string', value: match[1] }],
    ['general.base_model.0.repo_url', { type: 'string', value: `https://huggingface.co/${id}` }],
  ];
}

function metadata(adapter: PeftAdapter, name: string, alpha: number): [string, MetadataValue][] {
  return [
    ['general.architecture', { type: 'string', value: 'llama' }],
    ['general.type', { type: 'string', value: 'adapter' }],
    ['adapter.type', { type: 'string', value: 'lora' }],
    ['general.name', { type: 'string', value: name }],
    ...baseModelMetadata(adapter.baseModel),
    ['adapter.lora.alpha', { type: 'f32', value: alpha }],
    ['general.quantization_version', { type: 'u32', value: QUANTIZATION_VERSION }],
  ];
}

const alignUp = (n: number) => Math.ceil(n / ALIGNMENT) * ALIGNMENT;

/** Little-endian bytes, appended piece by piece. */
class ByteSink {
  private readonly chunks: Uint8Array[] = [];
  private length = 0;

  private view(bytes: number): DataView {
    const chunk = new Uint8Array(bytes);
    this.chunks.push(chunk);
    this.length += bytes;
    return new DataView(chunk.buffer);
  }

  u32(value: number): void {
    this.view(4).setUint32(0, value, true);
  }

  u64(value: number): void {
    this.view(8).setBigUint64(0, BigInt(value), true);
  }

  f32s(values: Float32Array): void {
    const view = this.view(values.length * 4);
    values.forEach((v, i) => {
      view.setFloat32(i * 4, v, true);
    });
  }

  string(text: string): void {
    const bytes = new TextEncoder().encode(text);
    this.u64(bytes.length);
    this.chunks.push(bytes);
    this.length += bytes.length;
  }

  /** Zero bytes up to the next multiple of the alignment. */
  align(): void {
    this.view(alignUp(this.length) - this.length);
  }

  bytes(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const chunk of this.chunks) {
      out.set(chunk, at);
      at += chunk.length;
    }
    return out;
  }
}

function writeValue(sink: ByteSink, value: MetadataValue): void {
  sink.u32(VALUE_TYPE[value.type]);
  if (value.type === 'string') sink.string(value.value);
  else if (value.type === 'u32') sink.u32(value.value);
  else sink.f32s(Float32Array.of(value.value));
}

function encodeGguf(
  entries: [string, MetadataValue][],
  tensors: readonly GgufTensor[],
): Uint8Array {
  const sink = new ByteSink();
  sink.u32(GGUF_MAGIC);
  sink.u32(GGUF_VERSION);
  sink.u64(tensors.length);
  sink.u64(entries.length);
  for (const [key, value] of entries) {
    sink.string(key);
    writeValue(sink, value);
  }
  let offset = 0;
  for (const t of tensors) {
    sink.string(t.name);
    sink.u32(t.dims.length);
    for (const d of t.dims) sink.u64(d);
    sink.u32(GGML_TYPE_F32);
    sink.u64(offset);
    offset += alignUp(t.data.length * 4);
  }
  sink.align();
  for (const t of tensors) {
    sink.f32s(t.data);
    sink.align();
  }
  return sink.bytes();
}

/**
 * The adapter as a llama.cpp GGUF LoRA for a Llama base model. Refuses variants the format cannot
 * carry (DoRA), modules_to_save and modules llama.cpp has no LoRA name for; q_proj / k_proj need
 * the head counts (`options`).
 */
export function ggufLoraFile(adapter: PeftAdapter, options: GgufExportOptions): GgufExport {
  refuseUnexportable(adapter);
  const alpha = Math.fround(adapter.details.alpha);
  const { tensors, rescaled } = loraTensors(adapter, alpha, options);
  return {
    bytes: encodeGguf(metadata(adapter, options.name, alpha), tensors),
    tensors: tensors.length,
    alpha,
    rescaled,
  };
}
