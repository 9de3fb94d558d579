// The Llama family as transformers' LlamaForCausalLM runs it, and the model_types built the same
// way: Mistral (a sliding window on every layer when `sliding_window` is set) and Qwen2 (biases
// on q, k and v; sliding layers by Qwen's rule; its own family for llama.cpp). Llama 3.x differs
// only in its rope_scaling.
import type { Architecture } from '../architecture.ts';
import { ropeFrequencies } from '../rope-scaling.ts';
import {
  decoderShape,
  ggufDecoderConfig,
  layerTable,
  llamaModules,
  modelConfig,
  slidingLayers,
  type ConfigReader,
  type Family,
  type GgufHparams,
} from './common.ts';

/** llama.cpp's tensor names for the seven Llama-style modules. */
export const LLAMA_GGUF_TENSORS = {
  q_proj: 'attn_q',
  k_proj: 'attn_k',
  v_proj: 'attn_v',
  o_proj: 'attn_output',
  gate_proj: 'ffn_gate',
  up_proj: 'ffn_up',
  down_proj: 'ffn_down',
} as const;

/**
 * A Llama-style family's config.json from GGUF metadata (llama.cpp's llama-model.cpp reads the
 * same keys for each): the shared sizes, and biases where the file holds them.
 */
export function llamaStyleGgufConfig(modelType: string) {
  return (h: GgufHparams): Record<string, unknown> => ({
    model_type: modelType,
    ...ggufDecoderConfig(h),
    attention_bias: h.hasTensor('blk.0.attn_q.bias'),
    mlp_bias: h.hasTensor('blk.0.ffn_up.bias'),
  });
}

/**
 * A Llama-style model: pre-norm RMSNorm layers with the seven modules and SwiGLU. Families that
 * differ in a detail (Qwen3's q/k norms, SmolLM3's NoPE layers) pass what they change.
 */
export function buildLlamaStyle(
  c: ConfigReader,
  family: string,
  changes: (arch: Architecture) => Partial<Architecture> = () => ({}),
) {
  const type = c.str('model_type');
  const act = c.str('hidden_act', 'silu');
  c.refuse([act !== 'silu' && `hidden_act ${JSON.stringify(act)} (only "silu")`]);
  const shape = decoderShape(c);
  const intermediateSize = c.int('intermediate_size');
  const biasQkv = type === 'qwen2' || c.bool('attention_bias');
  const modules = llamaModules(shape, intermediateSize, {
    qkv: biasQkv,
    o: type !== 'qwen2' && c.bool('attention_bias'),
    mlp: c.bool('mlp_bias'),
  });
  const maxPositions = c.int('max_position_embeddings', 2048);
  const rope = ropeFrequencies(
    shape.headDim,
    c.num('rope_theta', 10000),
    c.object('rope_scaling'),
    {
      maxPositions,
    },
  );
  const sliding =
    type === 'mistral'
      ? Array<boolean>(shape.numLayers).fill(c.has('sliding_window'))
      : slidingLayers(c, shape.numLayers);
  const window = c.has('sliding_window') ? c.int('sliding_window') : null;
  const tied = c.bool('tie_word_embeddings');
  const arch: Architecture = {
    family,
    layerPrefix: 'model.layers.',
    modules,
    norm: { kind: 'rms', eps: c.num('rms_norm_eps', 1e-6), offset: 0 },
    norms: { input: 'input_layernorm', mlp: 'post_attention_layernorm', final: 'model.norm' },
    qkNorm: null,
    attentionScale: 1 / Math.sqrt(shape.headDim),
    rotaryDims: shape.headDim,
    ropes: [rope],
    layers: layerTable(sliding, window, () => 0, c),
    activation: 'silu',
    gatedMlp: true,
    embedding: 'model.embed_tokens',
    embedScale: 1,
    positions: null,
    head: tied ? 'model.embed_tokens' : 'lm_head',
    finalSoftcap: null,
  };
  Object.assign(arch, changes(arch));
  return modelConfig(c, shape, arch, { intermediateSize, maxPositions, tieWordEmbeddings: tied });
}

export const llama: Family = {
  name: 'llama',
  modelTypes: ['llama', 'mistral'],
  build: (c) => buildLlamaStyle(c, 'llama'),
  example: {
    model_type: 'llama',
    hidden_size: 12,
    intermediate_size: 18,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 6,
    vocab_size: 19,
    max_position_embeddings: 16,
    rope_scaling: {
      rope_type: 'llama3',
      factor: 8,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 8,
    },
  },
  gguf: {
    arch: 'llama',
    tensors: LLAMA_GGUF_TENSORS,
    permuteQK: true,
    config: llamaStyleGgufConfig('llama'),
  },
};

/** Qwen2 and Qwen2.5: llama.cpp keeps HF's q/k row order for them. */
export const qwen2: Family = {
  name: 'qwen2',
  modelTypes: ['qwen2'],
  build: (c) => buildLlamaStyle(c, 'qwen2'),
  example: {
    model_type: 'qwen2',
    hidden_size: 12,
    intermediate_size: 18,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 1,
    head_dim: 4,
    vocab_size: 19,
    max_position_embeddings: 16,
    tie_word_embeddings: true,
    use_sliding_window: true,
    sliding_window: 3,
    max_window_layers: 1,
  },
  gguf: {
    arch: 'qwen2',
    tensors: LLAMA_GGUF_TENSORS,
    permuteQK: false,
    config: llamaStyleGgufConfig('qwen2'),
  },
};

/** The sizes of a Llama model without a config.json (llama2.c checkpoints, test models). */
export interface LlamaShape {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  maxPositions: number;
  tieWordEmbeddings: boolean;
  attentionBias?: boolean;
  rmsNormEps?: number;
  ropeTheta?: number;
  bosTokenId?: number;
  eosTokenIds?: number[];
}

/** The config.json transformers' LlamaConfig reads for a shape (Qwen2 for attention biases). */
export function llamaConfigJson(s: LlamaShape): Record<string, unknown> {
  const eos = s.eosTokenIds ?? [2];
  return {
    architectures: [s.attentionBias ? 'Qwen2ForCausalLM' : 'LlamaForCausalLM'],
    model_type: s.attentionBias ? 'qwen2' : 'llama',
    hidden_size: s.hiddenSize,
    intermediate_size: s.intermediateSize,
    num_hidden_layers: s.numLayers,
    num_attention_heads: s.numHeads,
    num_key_value_heads: s.numKvHeads,
    head_dim: s.headDim,
    vocab_size: s.vocabSize,
    max_position_embeddings: s.maxPositions,
    rms_norm_eps: s.rmsNormEps ?? 1e-5,
    rope_theta: s.ropeTheta ?? 10000,
    tie_word_embeddings: s.tieWordEmbeddings,
    hidden_act: 'silu',
    bos_token_id: s.bosTokenId ?? 1,
    eos_token_id: eos.length === 1 ? eos[0] : eos,
    torch_dtype: 'float32',
  };
}
