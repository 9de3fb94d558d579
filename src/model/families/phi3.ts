// Phi-3 and Phi-4-mini: Llama-style layers with fused projections — `qkv_proj` [q + 2·kv, d]
// and `gate_up_proj` [2·I, d] (gate first) — RoPE on the first partial_rotary_factor of each
// head, and longrope scaling. Adapters on the fused modules stay fused (B has the fused width).
// The engine keeps contexts within original_max_position_embeddings, where longrope uses its
// short factors: long-context factors would change every position's rotation past that length.
import type { Architecture } from '../architecture.ts';
import { ropeFrequencies } from '../rope-scaling.ts';
import {
  decoderShape,
  ggufDecoderConfig,
  layerTable,
  linearModule,
  modelConfig,
  slidingLayers,
  type ConfigReader,
  type Family,
} from './common.ts';

function build(c: ConfigReader) {
  const act = c.str('hidden_act', 'silu');
  c.refuse([
    act !== 'silu' && `hidden_act ${JSON.stringify(act)} (only "silu")`,
    c.bool('attention_bias') && 'attention_bias',
    c.bool('mlp_bias') && 'mlp_bias',
    c.bool('lm_head_bias') && 'lm_head_bias',
  ]);
  const shape = decoderShape(c);
  const { hiddenSize: d, numHeads, numKvHeads, headDim } = shape;
  const intermediateSize = c.int('intermediate_size');
  const rotaryDims =
    2 *
    Math.floor(
      (headDim * (c.has('partial_rotary_factor') ? c.num('partial_rotary_factor') : 1)) / 2,
    );
  if (rotaryDims < 2 || rotaryDims > headDim)
    c.fail(`partial_rotary_factor leaves ${rotaryDims} of ${headDim} dims rotating`);
  const configured = c.int('max_position_embeddings', 4096);
  const scaling = c.object('rope_scaling');
  const originalMax = c.has('original_max_position_embeddings')
    ? c.int('original_max_position_embeddings')
    : undefined;
  const rope = ropeFrequencies(rotaryDims, c.num('rope_theta', 10000), scaling, {
    maxPositions: configured,
    originalMax,
  });
  const maxPositions =
    scaling && originalMax !== undefined ? Math.min(configured, originalMax) : configured;
  const q = numHeads * headDim;
  const kv = numKvHeads * headDim;
  const tied = c.bool('tie_word_embeddings');
  // Phi-3's attention applies config.sliding_window to every layer when it is set.
  const window = c.has('sliding_window') ? c.int('sliding_window') : null;
  const sliding = c.has('layer_types')
    ? slidingLayers(c, shape.numLayers)
    : Array<boolean>(shape.numLayers).fill(window !== null);
  const arch: Architecture = {
    family: 'phi3',
    layerPrefix: 'model.layers.',
    modules: [
      linearModule('self_attn.qkv_proj', 'qkv', { in: d, out: q + 2 * kv }),
      linearModule('self_attn.o_proj', 'o', { in: q, out: d }),
      linearModule('mlp.gate_up_proj', 'gate_up', { in: d, out: 2 * intermediateSize }),
      linearModule('mlp.down_proj', 'down', { in: intermediateSize, out: d }),
    ],
    norm: { kind: 'rms', eps: c.num('rms_norm_eps', 1e-5), offset: 0 },
    norms: { input: 'input_layernorm', mlp: 'post_attention_layernorm', final: 'model.norm' },
    qkNorm: null,
    attentionScale: 1 / Math.sqrt(headDim),
    rotaryDims,
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
  return modelConfig(c, shape, arch, { intermediateSize, maxPositions, tieWordEmbeddings: tied });
}

export const phi3: Family = {
  name: 'phi3',
  modelTypes: ['phi3'],
  build,
  example: {
    model_type: 'phi3',
    hidden_size: 16,
    intermediate_size: 18,
    num_hidden_layers: 2,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    vocab_size: 19,
    max_position_embeddings: 64,
    original_max_position_embeddings: 16,
    partial_rotary_factor: 0.5,
    rope_scaling: { type: 'longrope', short_factor: [1.5, 2], long_factor: [3, 5] },
    tie_word_embeddings: false,
  },
  // llama.cpp stores the fused gate_up_proj as ffn_up (twice the width).
  gguf: {
    arch: 'phi3',
    tensors: {
      qkv_proj: 'attn_qkv',
      o_proj: 'attn_output',
      gate_up_proj: 'ffn_up',
      down_proj: 'ffn_down',
    },
    permuteQK: false,
    // The converter (Phi3MiniModel) stores the rotating dims per head, longrope's factors as the
    // tensors rope_factors_short/long and original_max_position_embeddings under
    // rope.scaling.original_context_length; the attention factor is the builder's from those.
    config: (h) => {
      const base = ggufDecoderConfig(h);
      const short = h.values('rope_factors_short.weight');
      const long = h.values('rope_factors_long.weight');
      const original = h.optional('rope.scaling.original_context_length');
      const window = h.optional('attention.sliding_window');
      return {
        ...base,
        model_type: 'phi3',
        partial_rotary_factor: h.num('rope.dimension_count') / (base.head_dim as number),
        ...(short &&
          long && { rope_scaling: { type: 'longrope', short_factor: short, long_factor: long } }),
        ...(original !== undefined && { original_max_position_embeddings: original }),
        ...(window !== undefined && { sliding_window: window }),
      };
    },
  },
};
