// What the family builders share: reading an untrusted config.json field by field (a clear
// FormatError naming the key), the module list of a standard decoder layer, and the layer table
// (sliding windows, which layers rotate).
import type { Architecture, LayerSpec, ModuleRole, ModuleSpec } from '../architecture.ts';
import type { ModelConfig } from '../config.ts';
import { FormatError } from '../errors.ts';

/** One family: how its config.json becomes a ModelConfig, and how llama.cpp names it. */
export interface Family {
  /** The family's name (architecture.ts's `family`). */
  name: string;
  /** HF model_type values it reads. */
  modelTypes: readonly string[];
  build(config: ConfigReader): ModelConfig;
  /** How llama.cpp stores the family (GGUF LoRA export, GGUF models). */
  gguf: GgufFacts;
  /**
   * A small config.json of the family using every feature it supports (odd sizes, windows,
   * scalings): the tests' random models, and the family's module names without a model.
   */
  example: Readonly<Record<string, unknown>>;
  /** A checkpoint's tensor name as the architecture names it (GPT-2 files may omit `transformer.`). */
  canonicalName?(name: string): string;
}

/** A family as llama.cpp's GGUF files hold it. */
export interface GgufFacts {
  /** llama.cpp's architecture name (general.architecture). */
  arch: string;
  /** llama.cpp's tensor name per module (`blk.N.` is prepended, `.weight`/`.bias` appended). */
  tensors: Readonly<Record<string, string>>;
  /**
   * Whether q/k rows are permuted: llama.cpp's Llama converter reorders RoPE halves into
   * interleaved pairs (LlamaModel.permute); other families keep HF's order.
   */
  permuteQK: boolean;
  /**
   * The family's config.json keys from the file's metadata, for its own builder (one builder per
   * family). Sizes, tying, vocabulary and token ids are the loader's (src/model/gguf/load.ts).
   */
  config(h: GgufHparams): Record<string, unknown>;
  /** What the converter added to every norm weight (Gemma: 1, as ggml's RMSNorm has no offset). */
  normShift?: number;
}

/** GGUF metadata as a family's translation reads it (src/model/gguf/load.ts implements it). */
export interface GgufHparams {
  /** The number under `<arch>.<key>`; missing is refused by name unless there is a fallback. */
  num(key: string, fallback?: number): number;
  /** The number under `<arch>.<key>`, or undefined. */
  optional(key: string): number | undefined;
  /** The string under `<arch>.<key>`, or undefined. */
  string(key: string): string | undefined;
  hasTensor(name: string): boolean;
  /** A small f32 tensor's values (rope factors), or undefined when the file has none. */
  values(name: string): number[] | undefined;
  /** Refuses the file with a FormatError naming it. */
  fail(problem: string): never;
}

/**
 * llama.cpp's names for what is not a linear module, the same in every family (gguf-py's
 * constants.py MODEL_TENSOR / TENSOR_NAMES): the architecture's norm roles within a layer, its
 * q/k norms, and the model-wide tensors.
 */
export const GGUF_LAYER_NORMS = {
  input: 'attn_norm',
  mlp: 'ffn_norm',
  postAttention: 'post_attention_norm',
  postMlp: 'post_ffw_norm',
} as const;
export const GGUF_QK_NORMS = { q: 'attn_q_norm', k: 'attn_k_norm' } as const;
export const GGUF_MODEL_TENSORS = {
  embedding: 'token_embd',
  positions: 'position_embd',
  final: 'output_norm',
  head: 'output',
} as const;

/**
 * The decoder sizes every llama.cpp architecture stores under the same keys (gguf-py's
 * constants.py Keys.LLM / Keys.Attention / Keys.Rope), as HF's Llama-style config.json names them.
 */
export function ggufDecoderConfig(h: GgufHparams): Record<string, unknown> {
  const hidden = h.num('embedding_length');
  const heads = h.num('attention.head_count');
  return {
    hidden_size: hidden,
    intermediate_size: h.num('feed_forward_length'),
    num_hidden_layers: h.num('block_count'),
    num_attention_heads: heads,
    num_key_value_heads: h.num('attention.head_count_kv', heads),
    head_dim: h.num('attention.key_length', hidden / heads),
    max_position_embeddings: h.num('context_length'),
    rms_norm_eps: h.num('attention.layer_norm_rms_epsilon'),
    rope_theta: h.num('rope.freq_base', 10000),
    rope_scaling: ggufRopeScaling(h),
  };
}

/**
 * rope_scaling from llama.cpp's keys (`rope.scaling.type`: none, linear, yarn, longrope…) or its
 * `rope_freqs.weight`: Llama 3.1+'s banded rescaling, which the converter stores as one divisor
 * per rotated pair (ggml's rope freq_factors). Those divisors are HF's `longrope` with the same
 * short and long factors and no attention factor: exactly the frequencies llama.cpp runs.
 */
export function ggufRopeScaling(h: GgufHparams): Record<string, unknown> | null {
  const factors = h.values('rope_freqs.weight');
  if (factors)
    return {
      rope_type: 'longrope',
      short_factor: factors,
      long_factor: factors,
      attention_factor: 1,
    };
  const type = h.string('rope.scaling.type') ?? 'none';
  if (type === 'none') return null;
  // Other types go to the builder as HF names them, which refuses what the engine does not run.
  return type === 'linear'
    ? { rope_type: 'linear', factor: h.num('rope.scaling.factor') }
    : { rope_type: type };
}

/** Typed, checked access to a config.json object. */
export class ConfigReader {
  constructor(
    readonly json: Record<string, unknown>,
    readonly file = 'config.json',
  ) {}

  fail(message: string): never {
    throw new FormatError(this.file, message);
  }

  has(key: string): boolean {
    return this.json[key] !== undefined && this.json[key] !== null;
  }

  int(key: string, fallback?: number): number {
    const v = this.json[key] ?? fallback;
    if (!Number.isSafeInteger(v) || (v as number) <= 0)
      this.fail(`${key} must be a positive integer, got ${JSON.stringify(this.json[key])}`);
    return v as number;
  }

  num(key: string, fallback?: number): number {
    const v = this.json[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
      this.fail(`${key} must be a positive number, got ${JSON.stringify(this.json[key])}`);
    return v;
  }

  bool(key: string, fallback = false): boolean {
    const v = this.json[key];
    return typeof v === 'boolean' ? v : fallback;
  }

  str(key: string, fallback?: string): string {
    const v = this.json[key] ?? fallback;
    if (typeof v !== 'string') this.fail(`${key} must be a string, got ${JSON.stringify(v)}`);
    return v;
  }

  /** A positive number or null/absent. */
  optionalNum(key: string): number | null {
    return this.has(key) ? this.num(key) : null;
  }

  object(key: string): Record<string, unknown> | null {
    const v = this.json[key];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'object' || Array.isArray(v)) this.fail(`${key} must be an object`);
    return v as Record<string, unknown>;
  }

  /** Features the engine does not run, refused together by name. */
  refuse(features: readonly (string | false | null | undefined)[]): void {
    const named = features.filter((f): f is string => typeof f === 'string');
    if (named.length > 0) this.fail(`unsupported features: ${named.join(', ')}`);
  }
}

/** Sizes every decoder shares, checked against each other. */
export function decoderShape(c: ConfigReader, keys = DECODER_KEYS) {
  const hiddenSize = c.int(keys.hidden);
  const numHeads = c.int(keys.heads);
  const numKvHeads = c.int(keys.kvHeads, numHeads);
  const headDim = c.int('head_dim', hiddenSize / numHeads);
  if (numHeads % numKvHeads !== 0)
    c.fail(`${keys.heads} ${numHeads} is not a multiple of ${keys.kvHeads} ${numKvHeads}`);
  const numLayers = c.int(keys.layers);
  // The per-layer tables are built before any weight is read: an untrusted count must be bounded.
  if (numLayers > MAX_LAYERS)
    c.fail(
      `${keys.layers} ${numLayers} is beyond any model this engine runs (at most ${MAX_LAYERS})`,
    );
  return {
    hiddenSize,
    numHeads,
    numKvHeads,
    headDim,
    numLayers,
    vocabSize: c.int('vocab_size'),
  };
}

/** More layers than any released decoder has (the largest have ~130). */
const MAX_LAYERS = 1024;

const DECODER_KEYS = {
  hidden: 'hidden_size',
  heads: 'num_attention_heads',
  kvHeads: 'num_key_value_heads',
  layers: 'num_hidden_layers',
};

/**
 * The context the engine runs: the model's, but at most 8,192 positions — the KV cache and
 * rotary tables are allocated for the whole context, and a browser GPU holds no more.
 */
export const MAX_CONTEXT = 8192;

export function tokenIds(c: ConfigReader): { bosTokenId: number; eosTokenIds: number[] } {
  const eos = c.json.eos_token_id ?? 2;
  return {
    bosTokenId: typeof c.json.bos_token_id === 'number' ? c.json.bos_token_id : 1,
    eosTokenIds: (Array.isArray(eos) ? eos : [eos]).filter(
      (e): e is number => typeof e === 'number',
    ),
  };
}

/** A module spec; its name is the last segment of the path unless given. */
export function linearModule(
  path: string,
  role: ModuleRole,
  shape: { in: number; out: number },
  options: { bias?: boolean; conv1d?: boolean; name?: string } = {},
): ModuleSpec {
  return {
    name: options.name ?? path.slice(path.lastIndexOf('.') + 1),
    path,
    role,
    ...shape,
    bias: options.bias ?? false,
    conv1d: options.conv1d ?? false,
  };
}

/** The seven modules of a Llama-style layer (q, k, v, o, gate, up, down) with their biases. */
export function llamaModules(
  s: { hiddenSize: number; numHeads: number; numKvHeads: number; headDim: number },
  intermediate: number,
  bias: { qkv?: boolean; o?: boolean; mlp?: boolean } = {},
): ModuleSpec[] {
  const d = s.hiddenSize;
  const q = s.numHeads * s.headDim;
  const kv = s.numKvHeads * s.headDim;
  return [
    linearModule('self_attn.q_proj', 'q', { in: d, out: q }, { bias: bias.qkv }),
    linearModule('self_attn.k_proj', 'k', { in: d, out: kv }, { bias: bias.qkv }),
    linearModule('self_attn.v_proj', 'v', { in: d, out: kv }, { bias: bias.qkv }),
    linearModule('self_attn.o_proj', 'o', { in: q, out: d }, { bias: bias.o }),
    linearModule('mlp.gate_proj', 'gate', { in: d, out: intermediate }, { bias: bias.mlp }),
    linearModule('mlp.up_proj', 'up', { in: d, out: intermediate }, { bias: bias.mlp }),
    linearModule('mlp.down_proj', 'down', { in: intermediate, out: d }, { bias: bias.mlp }),
  ];
}

/**
 * Which layers use a sliding window: `layer_types` when the config lists them, else
 * `use_sliding_window` from `max_window_layers` on (Qwen2/Qwen3's rule), else none.
 */
export function slidingLayers(c: ConfigReader, numLayers: number): boolean[] {
  const types = c.json.layer_types;
  if (Array.isArray(types)) {
    if (types.length !== numLayers)
      c.fail(`layer_types lists ${types.length} layers, num_hidden_layers is ${numLayers}`);
    return types.map((t, l) => {
      if (t === 'sliding_attention') return true;
      if (t === 'full_attention') return false;
      return c.fail(`layer_types[${l}] ${JSON.stringify(t)} is not supported`);
    });
  }
  if (!c.bool('use_sliding_window')) return Array<boolean>(numLayers).fill(false);
  const from = c.has('max_window_layers') ? c.int('max_window_layers') : 0;
  return Array.from({ length: numLayers }, (_, l) => l >= from);
}

/** The layer table: each layer's window (when sliding) and RoPE table (index, or null: none). */
export function layerTable(
  sliding: readonly boolean[],
  window: number | null,
  rope: (layer: number) => number | null,
  c: ConfigReader,
): LayerSpec[] {
  if (sliding.some(Boolean) && window === null) c.fail('sliding-window layers need sliding_window');
  return sliding.map((s, l) => ({ rope: rope(l), window: s ? window : null }));
}

/** A ModelConfig from a built architecture and the shape. */
export function modelConfig(
  c: ConfigReader,
  shape: ReturnType<typeof decoderShape>,
  arch: Architecture,
  rest: { intermediateSize: number; maxPositions: number; tieWordEmbeddings: boolean },
): ModelConfig {
  if (arch.ropes.length > 0 && (arch.rotaryDims % 2 !== 0 || arch.rotaryDims > shape.headDim))
    c.fail(`RoPE needs an even number of rotating dims per head, not ${arch.rotaryDims}`);
  return {
    modelType: c.str('model_type'),
    ...shape,
    ...rest,
    // A learned position table fixes the context; rotary ones are computed for what is run.
    maxPositions: arch.positions ? rest.maxPositions : Math.min(rest.maxPositions, MAX_CONTEXT),
    ...tokenIds(c),
    arch,
    source: c.json,
  };
}
