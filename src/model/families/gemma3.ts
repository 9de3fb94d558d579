// Gemma 3 text models (gemma3_text: the 270M and 1B checkpoints). Against Llama: embeddings
// × √hidden (rounded to the checkpoint's dtype, as transformers casts it), RMSNorm x·(1 + w),
// four norms per layer (a sandwich around attention and around the MLP), q/k norms, GeGLU with
// gelu_pytorch_tanh, attention scaled by query_pre_attn_scalar^−½, sliding-window attention on
// local layers with their own RoPE base (rope_local_base_freq), optional final soft-capping.
import { bf16ToFloat, floatToBf16, floatToHalf, halfToFloat } from '../../gpu/half.ts';
import type { Architecture } from '../architecture.ts';
import { ropeFrequencies } from '../rope-scaling.ts';
import { LLAMA_GGUF_TENSORS } from './llama.ts';
import {
  decoderShape,
  ggufDecoderConfig,
  layerTable,
  llamaModules,
  modelConfig,
  slidingLayers,
  type ConfigReader,
  type Family,
} from './common.ts';

/** Sliding layers from layer_types, or every layer but each pattern-th one. */
function gemmaSliding(c: ConfigReader, numLayers: number): boolean[] {
  if (c.has('layer_types')) return slidingLayers(c, numLayers);
  const pattern = c.int(
    '_sliding_window_pattern',
    c.has('sliding_window_pattern') ? c.int('sliding_window_pattern') : 6,
  );
  return Array.from({ length: numLayers }, (_, l) => (l + 1) % pattern !== 0);
}

function build(c: ConfigReader) {
  const act = c.str(
    'hidden_activation',
    c.has('hidden_act') ? c.str('hidden_act') : 'gelu_pytorch_tanh',
  );
  c.refuse([
    act !== 'gelu_pytorch_tanh' &&
      `hidden_activation ${JSON.stringify(act)} (only "gelu_pytorch_tanh")`,
    c.has('attn_logit_softcapping') && 'attn_logit_softcapping',
    c.bool('use_bidirectional_attention') && 'use_bidirectional_attention',
    c.bool('attention_bias') && 'attention_bias',
  ]);
  const shape = decoderShape(c);
  const intermediateSize = c.int('intermediate_size');
  const maxPositions = c.int('max_position_embeddings', 32768);
  const global = ropeFrequencies(
    shape.headDim,
    c.num('rope_theta', 1e6),
    c.object('rope_scaling'),
    {
      maxPositions,
    },
  );
  const local = ropeFrequencies(shape.headDim, c.num('rope_local_base_freq', 10000), null, {
    maxPositions,
  });
  const sliding = gemmaSliding(c, shape.numLayers);
  const window = c.has('sliding_window') ? c.int('sliding_window') : null;
  const dtype = c.json.torch_dtype ?? c.json.dtype;
  const root = Math.sqrt(shape.hiddenSize);
  const embedScale =
    dtype === 'bfloat16'
      ? bf16ToFloat(floatToBf16(root))
      : dtype === 'float16'
        ? halfToFloat(floatToHalf(root))
        : Math.fround(root);
  const arch: Architecture = {
    family: 'gemma3',
    layerPrefix: 'model.layers.',
    modules: llamaModules(shape, intermediateSize),
    norm: { kind: 'rms', eps: c.num('rms_norm_eps', 1e-6), offset: 1 },
    norms: {
      input: 'input_layernorm',
      postAttention: 'post_attention_layernorm',
      mlp: 'pre_feedforward_layernorm',
      postMlp: 'post_feedforward_layernorm',
      final: 'model.norm',
    },
    qkNorm: { q: 'self_attn.q_norm', k: 'self_attn.k_norm' },
    attentionScale: c.num('query_pre_attn_scalar', shape.headDim) ** -0.5,
    rotaryDims: shape.headDim,
    // Table 0 is the global layers' (rope_theta, rope_scaling), table 1 the local layers'.
    ropes: [global, local],
    layers: layerTable(sliding, window, (l) => (sliding[l] ? 1 : 0), c),
    activation: 'gelu_tanh',
    gatedMlp: true,
    embedding: 'model.embed_tokens',
    embedScale,
    positions: null,
    head: 'model.embed_tokens',
    finalSoftcap: c.optionalNum('final_logit_softcapping'),
  };
  return modelConfig(c, shape, arch, { intermediateSize, maxPositions, tieWordEmbeddings: true });
}

export const gemma3: Family = {
  name: 'gemma3',
  modelTypes: ['gemma3_text'],
  build,
  gguf: {
    arch: 'gemma3',
    tensors: LLAMA_GGUF_TENSORS,
    permuteQK: false,
    // llama-model.cpp (LLM_ARCH_GEMMA3): every 6th layer global, local layers on RoPE base 10000,
    // attention scaled by head_dim^−½ except the 62-layer 27B's (hidden / heads)^−½; the
    // converter stores norms as 1 + w and the embedding unscaled (ggml scales by √hidden in f32).
    config: (h) => {
      const base = ggufDecoderConfig(h);
      const hidden = base.hidden_size as number;
      const heads = base.num_attention_heads as number;
      const window = h.optional('attention.sliding_window');
      return {
        ...base,
        model_type: 'gemma3_text',
        torch_dtype: 'float32',
        query_pre_attn_scalar: h.num('block_count') === 62 ? hidden / heads : base.head_dim,
        ...(window
          ? { sliding_window: window, sliding_window_pattern: 6 }
          : { layer_types: Array<string>(h.num('block_count')).fill('full_attention') }),
        rope_local_base_freq: h.num('rope.freq_base_swa', 10000),
        final_logit_softcapping: h.optional('final_logit_softcapping') ?? null,
      };
    },
    normShift: 1,
  },
  example: {
    model_type: 'gemma3_text',
    hidden_size: 12,
    intermediate_size: 18,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 1,
    head_dim: 8,
    query_pre_attn_scalar: 5,
    vocab_size: 19,
    max_position_embeddings: 16,
    layer_types: ['sliding_attention', 'full_attention'],
    sliding_window: 3,
    rope_theta: 1000000,
    rope_local_base_freq: 10000,
    rope_scaling: { rope_type: 'linear', factor: 2 },
    final_logit_softcapping: 7,
  },
};
