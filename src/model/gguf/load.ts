// A llama.cpp GGUF model file as the engine's model: its family from general.architecture (the
// families table's gguf.arch), its hyper-parameters translated to the family's config.json keys
// and built by the family's own builder (one builder per family), its tensors renamed to the HF
// names and dequantized to f32 on the host, and its tokenizer from the tokenizer.ggml.* metadata.
// Key and tensor names are llama.cpp's (gguf-py's constants.py, src/llama-arch.cpp).
//
// Every tensor is dequantized exactly (quant-types.ts's dequantize); quantized tensors keep
// their raw blocks beside the values (HostTensor.quantized) for kernels that read blocks.
import type { Architecture } from '../architecture.ts';
import { modulePath } from '../architecture.ts';
import type { ModelConfig } from '../config.ts';
import { FormatError } from '../errors.ts';
import { FAMILIES, type Family } from '../families.ts';
import {
  GGUF_LAYER_NORMS,
  GGUF_MODEL_TENSORS,
  GGUF_QK_NORMS,
  type GgufHparams,
} from '../families/common.ts';
import { expectedWeights, parseHfConfig } from '../hf-config.ts';
import type { TextTokenizer } from '../tokenizer.ts';
import type { HostTensor, ModelWeights, WeightSource } from '../weights.ts';
import { dequantize } from './quant-types.ts';
import { readGguf, type GgufFile, type GgufTensorInfo, type GgufValue } from './read.ts';
import { ggufSourceRepo } from './source.ts';
import { ggufTokenizer } from './tokenizer.ts';
import { interleavedToHalves } from '../rope-order.ts';

export interface GgufModel {
  config: ModelConfig;
  weights: ModelWeights;
  tokenizer: TextTokenizer;
  /** The Hub repo the file was converted from, where its metadata names one (ggufSourceRepo). */
  hubId?: string;
}

/** A whole GGUF model file: architecture, weights and tokenizer. `file` names it in errors. */
export function loadGgufModel(bytes: Uint8Array, file: string): GgufModel {
  const gguf = readGguf(bytes, file);
  const model = modelOf(gguf, file);
  const tokenizer = ggufTokenizer(gguf.metadata, file);
  if (tokenizer.vocabSize > model.config.vocabSize)
    throw new FormatError(
      file,
      `its tokenizer has ${tokenizer.vocabSize} tokens but token_embd.weight only ${model.config.vocabSize} rows`,
    );
  return { ...model, tokenizer };
}

/** A GGUF model file's architecture and weights (and source repo), without its tokenizer. */
export function loadGgufWeights(bytes: Uint8Array, file: string): Omit<GgufModel, 'tokenizer'> {
  return modelOf(readGguf(bytes, file), file);
}

/**
 * A GGUF model file's architecture, checked as loadGgufWeights checks it, and its weights
 * dequantized one at a time when asked: the file's bytes (as stored, quantized) stay the only
 * copy of the model, so two files can be compared weight by weight (LoRA extraction).
 */
export function openGgufWeights(bytes: Uint8Array, file: string): WeightSource {
  const { config, hubId, tensors } = placedModel(readGguf(bytes, file), file);
  return {
    config,
    ...(hubId !== undefined && { hubId }),
    names: [...tensors.keys()],
    read(name) {
      const read = tensors.get(name);
      if (!read) return Promise.reject(new FormatError(file, `has no weight ${name}`));
      return Promise.resolve(read());
    },
  };
}

function modelOf(gguf: GgufFile, file: string): Omit<GgufModel, 'tokenizer'> {
  const { config, hubId, tensors } = placedModel(gguf, file);
  const weights: ModelWeights = new Map([...tensors].map(([name, read]) => [name, read()]));
  return { config, weights, hubId };
}

/** The model's config and, by HF name, a reader of each weight (dequantized when called). */
function placedModel(
  gguf: GgufFile,
  file: string,
): { config: ModelConfig; hubId?: string; tensors: Map<string, () => HostTensor> } {
  const split = metadataNumber(gguf.metadata.get('split.count'));
  if (split !== undefined && split > 1)
    throw new FormatError(
      file,
      `is part 1 of ${split} (split.count): merge the parts first (llama-gguf-split --merge)`,
    );
  // A GGUF LoRA (convert_lora_to_gguf.py, our export) names its base model's architecture too.
  const type = gguf.metadata.get('general.type');
  if (type?.type === 'string' && type.value === 'adapter')
    throw new FormatError(file, 'is a LoRA adapter (general.type "adapter"), not a model');
  const family = familyOfArch(gguf, file);
  const config = ggufConfig(gguf, family, file);
  return {
    config,
    tensors: ggufTensors(gguf, config, family, file),
    hubId: ggufSourceRepo(gguf.metadata),
  };
}

function familyOfArch(gguf: GgufFile, file: string): Family {
  const entry = gguf.metadata.get('general.architecture');
  if (entry?.type !== 'string')
    throw new FormatError(file, 'metadata "general.architecture" is missing or not a string');
  const family = FAMILIES.find((f) => f.gguf.arch === entry.value);
  if (!family)
    throw new FormatError(
      file,
      `general.architecture ${JSON.stringify(entry.value)} is not supported (supported: ${FAMILIES.map((f) => f.gguf.arch).join(', ')})`,
    );
  return family;
}

/** A number-typed metadata value (64-bit ones when exact), or undefined. */
function metadataNumber(v: GgufValue | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (v.type === 'u64' || v.type === 'i64')
    return v.value <= BigInt(Number.MAX_SAFE_INTEGER) && v.value >= -BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(v.value)
      : undefined;
  if (v.type === 'f32') return shortestF32(v.value);
  return typeof v.value === 'number' ? v.value : undefined;
}

/**
 * The shortest decimal that rounds to the same f32: the value the converter wrote (1e-5, not
 * 9.99999975e-6), so that the config equals the HF one and eps is computed as HF does.
 */
function shortestF32(v: number): number {
  for (let digits = 1; digits < 9; digits++) {
    const d = Number(v.toPrecision(digits));
    if (Math.fround(d) === v) return d;
  }
  return v;
}

class Hparams implements GgufHparams {
  constructor(
    private readonly gguf: GgufFile,
    private readonly arch: string,
    private readonly file: string,
  ) {}

  fail(problem: string): never {
    throw new FormatError(this.file, problem);
  }

  num(key: string, fallback?: number): number {
    const v = this.optional(key) ?? fallback;
    if (v === undefined) this.fail(`metadata "${this.arch}.${key}" is missing`);
    return v;
  }

  optional(key: string): number | undefined {
    const full = `${this.arch}.${key}`;
    const entry = this.gguf.metadata.get(full);
    if (entry === undefined) return undefined;
    const v = metadataNumber(entry);
    // Every size, epsilon, base and factor the families read is positive.
    if (v === undefined || !Number.isFinite(v) || v <= 0)
      this.fail(
        `metadata "${full}" must be a positive number, got ${entry.type === 'array' ? 'an array' : String(entry.value)}`,
      );
    return v;
  }

  string(key: string): string | undefined {
    const full = `${this.arch}.${key}`;
    const entry = this.gguf.metadata.get(full);
    if (entry === undefined) return undefined;
    if (entry.type !== 'string') this.fail(`metadata "${full}" must be a string`);
    return entry.value;
  }

  hasTensor(name: string): boolean {
    return this.gguf.tensors.has(name);
  }

  values(name: string): number[] | undefined {
    const t = this.gguf.tensors.get(name);
    if (!t) return undefined;
    if (t.ne.length !== 1) this.fail(`tensor "${name}" must be 1-D, not [${t.shape.join(', ')}]`);
    return Array.from(dequantize(t.type, this.gguf.data(name), t.ne[0]));
  }
}

/** The family's config.json from the metadata, built by the family's builder. */
function ggufConfig(gguf: GgufFile, family: Family, file: string): ModelConfig {
  const h: Hparams = new Hparams(gguf, family.gguf.arch, file);
  // Per-layer tables are built from an untrusted count: bound it by the tensors first.
  const layers = h.num('block_count');
  if (layers > gguf.tensors.size)
    h.fail(
      `${family.gguf.arch}.block_count ${layers} needs at least one tensor per layer, but the file holds ${gguf.tensors.size}`,
    );
  const embedding = gguf.tensors.get(`${GGUF_MODEL_TENSORS.embedding}.weight`);
  if (!embedding || embedding.shape.length !== 2)
    h.fail(`needs a 2-D tensor "${GGUF_MODEL_TENSORS.embedding}.weight"`);
  const id = (key: string) => metadataNumber(gguf.metadata.get(`tokenizer.ggml.${key}`));
  // Generation ends at llama.cpp's end-of-generation tokens: EOS, and EOT/EOM where given.
  const eos = [...new Set([id('eos_token_id'), id('eot_token_id'), id('eom_token_id')])].filter(
    (e) => e !== undefined,
  );
  const json: Record<string, unknown> = {
    torch_dtype: 'float32',
    ...family.gguf.config(h),
    vocab_size: embedding.shape[0],
    // llama.cpp ties the head to the embedding when the file has no output.weight.
    tie_word_embeddings: !gguf.tensors.has(`${GGUF_MODEL_TENSORS.head}.weight`),
    ...(id('bos_token_id') !== undefined && { bos_token_id: id('bos_token_id') }),
    ...(eos.length > 0 && { eos_token_id: eos.length === 1 ? eos[0] : eos }),
  };
  const config = parseHfConfig(json, file);
  const dims = h.optional('rope.dimension_count');
  if (config.arch.ropes.length > 0 && dims !== undefined && dims !== config.arch.rotaryDims)
    h.fail(
      `${family.gguf.arch}.rope.dimension_count ${dims} differs from the ${config.arch.rotaryDims} dims per head that ${family.name} rotates`,
    );
  return config;
}

/** Tensors the loader reads into no weight: rope factors went into the config. */
const CONFIG_TENSORS = [
  'rope_freqs.weight',
  'rope_factors_short.weight',
  'rope_factors_long.weight',
];

interface Placement {
  /** The HF name, or null: read nowhere (a tied model's copy of the embedding as output). */
  name: string | null;
  /** Heads whose rows llama.cpp's converter permuted. */
  heads?: number;
  /** A norm weight (the family's normShift applies). */
  norm?: boolean;
}

/** Each llama.cpp tensor name of the architecture → where it goes. */
function placements(config: ModelConfig, family: Family): Map<string, Placement> {
  const arch: Architecture = config.arch;
  const out = new Map<string, Placement>();
  const both = (gguf: string, hf: string, extra: Omit<Placement, 'name'> = {}) => {
    out.set(`${gguf}.weight`, { name: `${hf}.weight`, ...extra });
    out.set(`${gguf}.bias`, { name: `${hf}.bias`, ...extra, norm: false });
  };
  both(GGUF_MODEL_TENSORS.embedding, arch.embedding);
  if (arch.positions) both(GGUF_MODEL_TENSORS.positions, arch.positions);
  both(GGUF_MODEL_TENSORS.final, arch.norms.final, { norm: true });
  if (arch.head !== arch.embedding) both(GGUF_MODEL_TENSORS.head, arch.head);
  else out.set(`${GGUF_MODEL_TENSORS.head}.weight`, { name: null });
  for (let l = 0; l < config.numLayers; l++) {
    const layer = `${arch.layerPrefix}${l}.`;
    for (const [role, tensor] of Object.entries(GGUF_LAYER_NORMS)) {
      const path = arch.norms[role as keyof typeof GGUF_LAYER_NORMS];
      if (path) both(`blk.${l}.${tensor}`, layer + path, { norm: true });
    }
    if (arch.qkNorm) {
      both(`blk.${l}.${GGUF_QK_NORMS.q}`, layer + arch.qkNorm.q, { norm: true });
      both(`blk.${l}.${GGUF_QK_NORMS.k}`, layer + arch.qkNorm.k, { norm: true });
    }
    for (const m of arch.modules) {
      const tensor = family.gguf.tensors[m.name];
      if (!tensor) continue;
      const permuted = family.gguf.permuteQK && (m.role === 'q' || m.role === 'k');
      const heads = m.role === 'q' ? config.numHeads : config.numKvHeads;
      both(`blk.${l}.${tensor}`, modulePath(arch, l, m), permuted ? { heads } : {});
    }
  }
  for (const name of CONFIG_TENSORS) out.set(name, { name: null });
  return out;
}

/** Each weight's reader by HF name, once every tensor is found where and as the config implies. */
function ggufTensors(
  gguf: GgufFile,
  config: ModelConfig,
  family: Family,
  file: string,
): Map<string, () => HostTensor> {
  const expected = expectedWeights(config);
  const where = placements(config, family);
  const weights = new Map<string, () => HostTensor>();
  const problems: string[] = [];
  for (const info of gguf.tensors.values()) {
    const place = where.get(info.name);
    if (place?.name === null) continue;
    const want = place && expected.get(place.name);
    if (!place || !want) {
      problems.push(`tensor "${info.name}" is not one of this ${family.gguf.arch} model's`);
      continue;
    }
    // GPT-2's converter stores Conv1D weights transposed to [out, in], the engine's layout.
    const shape = want.transposed ? [want.shape[1], want.shape[0]] : want.shape;
    if (shape.join() !== info.shape.join()) {
      problems.push(
        `tensor "${info.name}" is [${info.shape.join(', ')}], the metadata implies [${shape.join(', ')}]`,
      );
      continue;
    }
    const shift = place.norm ? (family.gguf.normShift ?? 0) : 0;
    const { heads } = place;
    weights.set(place.name, () => hostTensor(gguf, info, heads, shift));
  }
  const missing = [...expected.keys()].filter((name) => !weights.has(name));
  if (missing.length > 0)
    problems.push(
      `missing tensors for ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? `, and ${missing.length - 5} more` : ''}`,
    );
  if (problems.length > 0) throw new FormatError(file, problems.join('; '));
  return weights;
}

const HALF = { F16: 'f16', BF16: 'bf16' } as const;

function hostTensor(
  gguf: GgufFile,
  info: GgufTensorInfo,
  heads: number | undefined,
  shift: number,
): HostTensor {
  const count = info.shape.reduce((a, b) => a * b, 1);
  let blocks = gguf.data(info.name);
  let data = dequantize(info.type, blocks, count);
  if (heads !== undefined) {
    const rows = info.shape[0];
    data = interleavedToHalves(data, rows, heads);
    // Rows are whole blocks, so moving block rows is exact.
    blocks = interleavedToHalves(blocks, rows, heads);
  }
  // Gemma's converter stored 1 + w in f32: subtracting 1 gives w back wherever 1 + w was exact.
  if (shift !== 0) data = data.map((v) => v - shift);
  const half = info.type === 'F16' || info.type === 'BF16' ? HALF[info.type] : undefined;
  const quantized = info.type !== 'F32' && half === undefined && shift === 0;
  return {
    shape: info.shape,
    data,
    ...(half && { half }),
    ...(quantized && { quantized: { type: info.type, blocks } }),
  };
}
