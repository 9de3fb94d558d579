// A PEFT LoRA adapter as a GGUF LoRA file for llama.cpp (`llama-cli --lora FILE.gguf`), laid out
// as llama.cpp's convert_lora_to_gguf.py writes one for the adapter's base model (docs/gguf.md says
// what was checked against its sources):
// - GGUF v3, little-endian: magic, version, tensor and key-value counts, the key-values, the
//   tensor infos, then the data, every tensor starting at a multiple of 32 bytes (the default
//   alignment, so general.alignment is not written, as the script does not).
// - Key-values: general.architecture (llama.cpp's name for the base model's family, which its
//   loader requires to equal the model's), general.type "adapter", adapter.type "lora",
//   general.name, the base model, adapter.lora.alpha (f32), general.quantization_version 2.
// - Per module `blk.N.<tensor>.weight.lora_a` (A, r × in) and `….lora_b` (B, out × r), F32, with
//   ggml's dimensions innermost first (A: [in, r], B: [r, out]), the tensor names the family's
//   (src/model/families/), the rows as PyTorch stores them. GPT-2's Conv1D modules too: PEFT's
//   factors are A [r, in] and B [out, r] there as well, and llama.cpp's GPT-2 weights [out, in].
// - q_proj and k_proj where the family's permuteQK says so (Llama, SmolLM3): llama.cpp runs RoPE
//   on adjacent pairs there, HF on the two halves of each head, so the script permutes those
//   weights' rows per head; for a LoRA only B has rows: within each head, row (i, half t) moves to
//   2i + t. The base model's head counts say where the heads are.
// - Scaling: llama.cpp applies alpha / r with one alpha for the file and r read from each B; PEFT
//   applies per-module alpha (alpha_pattern) and alpha / √r under rsLoRA. Each B is multiplied by
//   s_PEFT / (alpha / r), so llama.cpp's scaling reproduces PEFT's ΔW = s·B·A exactly (a factor of
//   1, B untouched, for a plain LoRA). The script itself writes B as is and so gets those wrong.
import { locateModule } from '../model/architecture.ts';
import type { ModelConfig } from '../model/config.ts';
import { familyOf, type Family } from '../model/families.ts';
import { GGML_QUANT_VERSION } from '../model/gguf/constants.ts';
import { encodeGguf, f32Bytes, type GgufWriteValue } from '../model/gguf/write.ts';
import { halvesToInterleaved } from '../model/rope-order.ts';
import type { AdapterModule, PeftAdapter } from './peft-read.ts';
import { ggufRefusal } from './variants.ts';

export interface GgufExportOptions {
  /** general.name. */
  name: string;
  /**
   * The base model's config: its family gives llama.cpp's architecture, tensor names and whether
   * q/k rows are permuted, its head counts where the heads are, its modules the shapes to fit.
   */
  config: ModelConfig;
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

/** An adapter module as llama.cpp names it, where it sorts, and the heads its B rows are permuted by. */
interface GgufModule {
  /** `blk.3.attn_q.weight`, `output.weight`. */
  name: string;
  /** Layer, then the module's place in the layer's forward order (the head after every layer). */
  order: [number, number];
  /** Heads of the base model whose rows llama.cpp permutes for this module; null: none. */
  heads: number | null;
}

/**
 * Where an adapter module goes in the base model's llama.cpp file. Refuses, by name, a module the
 * model lacks or that llama.cpp has no tensor for (embedding LoRA, another family's modules) and
 * one whose factors do not fit the model's weight.
 */
function ggufModule(
  path: string,
  m: AdapterModule,
  config: ModelConfig,
  family: Family,
): GgufModule {
  const { arch } = config;
  const fits = (shape: { in: number; out: number }) => {
    const [inputs, rows] = [m.a.length / m.rank, m.b.length / m.rank];
    if (inputs !== shape.in || rows !== shape.out)
      throw new RangeError(
        `${path} does not fit the base model: the adapter's factors make a ${rows} × ${inputs} update, the model's weight is ${shape.out} × ${shape.in}`,
      );
  };
  if (path === 'lm_head') {
    // A tied head is the token embedding in llama.cpp, which holds no output.weight to adapt.
    if (arch.head !== path)
      throw new RangeError(
        `lm_head: the base model ties its output head to the token embedding, so llama.cpp has no output.weight for this module`,
      );
    fits({ in: config.hiddenSize, out: config.vocabSize });
    return { name: 'output.weight', order: [Infinity, 0], heads: null };
  }
  const located = locateModule(arch, path);
  const tensor = located && family.gguf.tensors[located.module.name];
  if (!located || !tensor)
    throw new RangeError(
      `${path}: no llama.cpp ${family.gguf.arch} tensor for this module of the ${config.numLayers}-layer base model (exported: ${Object.keys(family.gguf.tensors).join(', ')}, lm_head; embedding LoRA is not)`,
    );
  const { layer, module } = located;
  fits(module);
  const permuted = family.gguf.permuteQK && (module.role === 'q' || module.role === 'k');
  return {
    name: `blk.${layer}.${tensor}.weight`,
    order: [layer, arch.modules.indexOf(module)],
    heads: permuted ? (module.role === 'q' ? config.numHeads : config.numKvHeads) : null,
  };
}

function scaled(values: Float32Array, factor: number): Float32Array {
  return factor === 1 ? values : values.map((v) => v * factor);
}

/** The lora_a / lora_b pairs, by layer then module, with B rescaled and permuted. */
function loraTensors(
  adapter: PeftAdapter,
  alpha: number,
  config: ModelConfig,
  family: Family,
): { tensors: GgufTensor[]; rescaled: string[] } {
  const tensors: GgufTensor[] = [];
  const rescaled: string[] = [];
  const placed = [...adapter.modules].map(([path, m]) => ({
    path,
    m,
    ...ggufModule(path, m, config, family),
  }));
  placed.sort((x, y) => x.order[0] - y.order[0] || x.order[1] - y.order[1]);
  for (const { path, m, name, heads } of placed) {
    const inputs = m.a.length / m.rank;
    const rows = m.b.length / m.rank;
    // llama.cpp computes alpha / r in f32; where PEFT's scaling differs in f32, B carries the ratio.
    const llamaScale = alpha / m.rank;
    const factor = Math.fround(m.scale) === Math.fround(llamaScale) ? 1 : m.scale / llamaScale;
    if (factor !== 1) rescaled.push(path);
    const b = scaled(m.b, factor);
    tensors.push(
      { name: `${name}.lora_a`, dims: [inputs, m.rank], data: m.a },
      {
        name: `${name}.lora_b`,
        dims: [m.rank, rows],
        data: heads === null ? b : halvesToInterleaved(b, rows, heads),
      },
    );
  }
  return { tensors, rescaled };
}

/**
 * general.base_model.0.* from an HF id `org/name`. The script takes these from the model card's
 * base_model, title-cased by its naming heuristics; the id's parts are written as they are.
 */
function baseModelMetadata(id: string | null): [string, GgufWriteValue][] {
  const match = id === null ? null : /^([\w.-]+)\/([\w.-]+)$/.exec(id);
  if (!match) return [];
  return [
    ['general.base_model.count', { type: 'u32', value: 1 }],
    ['general.base_model.0.name', { type: 'string', value: match[2] }],
    ['general.base_model.0.organization', { type: 'string', value: match[1] }],
    ['general.base_model.0.repo_url', { type: 'string', value: `https://huggingface.co/${id}` }],
  ];
}

function metadata(
  adapter: PeftAdapter,
  name: string,
  family: Family,
  alpha: number,
): [string, GgufWriteValue][] {
  return [
    ['general.architecture', { type: 'string', value: family.gguf.arch }],
    ['general.type', { type: 'string', value: 'adapter' }],
    ['adapter.type', { type: 'string', value: 'lora' }],
    ['general.name', { type: 'string', value: name }],
    ...baseModelMetadata(adapter.baseModel),
    ['adapter.lora.alpha', { type: 'f32', value: alpha }],
    ['general.quantization_version', { type: 'u32', value: GGML_QUANT_VERSION }],
  ];
}

/**
 * The adapter as a llama.cpp GGUF LoRA for its base model (`options.config`). Refuses variants the
 * format cannot carry (DoRA), modules_to_save, modules llama.cpp has no LoRA tensor for and
 * modules that do not fit the model.
 */
export function ggufLoraFile(adapter: PeftAdapter, options: GgufExportOptions): GgufExport {
  refuseUnexportable(adapter);
  const family = familyOf(options.config.arch);
  const alpha = Math.fround(adapter.details.alpha);
  const { tensors, rescaled } = loraTensors(adapter, alpha, options.config, family);
  return {
    bytes: encodeGguf(
      metadata(adapter, options.name, family, alpha),
      tensors.map((t) => ({ name: t.name, dims: t.dims, type: 'F32', data: f32Bytes(t.data) })),
    ),
    tensors: tensors.length,
    alpha,
    rescaled,
  };
}
