// GPT-2: learned position embeddings, LayerNorm with bias, gelu_new (the tanh GELU), a fused
// `c_attn` (q, k, v side by side) and Conv1D weights stored [in, out] (transposed on loading), all
// with biases, and the head tied to the token embedding. Both attention and MLP have a `c_proj`:
// their names here are `attn.c_proj` and `mlp.c_proj`, and the target `c_proj` selects both.
import type { Architecture } from '../architecture.ts';
import {
  decoderShape,
  layerTable,
  linearModule,
  modelConfig,
  type ConfigReader,
  type Family,
} from './common.ts';

const GPT2_KEYS = { hidden: 'n_embd', heads: 'n_head', kvHeads: 'n_head', layers: 'n_layer' };

function build(c: ConfigReader) {
  const act = c.str('activation_function', 'gelu_new');
  c.refuse([
    !['gelu_new', 'gelu_pytorch_tanh'].includes(act) &&
      `activation_function ${JSON.stringify(act)} (only "gelu_new")`,
    c.bool('scale_attn_by_inverse_layer_idx') && 'scale_attn_by_inverse_layer_idx',
    c.bool('add_cross_attention') && 'add_cross_attention',
    c.json.scale_attn_weights === false && 'scale_attn_weights false',
  ]);
  const shape = decoderShape(c, GPT2_KEYS);
  const d = shape.hiddenSize;
  const inner = c.has('n_inner') ? c.int('n_inner') : 4 * d;
  const conv = (
    path: string,
    role: 'qkv' | 'o' | 'up' | 'down',
    i: number,
    o: number,
    name?: string,
  ) => linearModule(path, role, { in: i, out: o }, { bias: true, conv1d: true, name });
  const arch: Architecture = {
    family: 'gpt2',
    layerPrefix: 'transformer.h.',
    modules: [
      conv('attn.c_attn', 'qkv', d, 3 * d),
      conv('attn.c_proj', 'o', d, d, 'attn.c_proj'),
      conv('mlp.c_fc', 'up', d, inner),
      conv('mlp.c_proj', 'down', inner, d, 'mlp.c_proj'),
    ],
    norm: { kind: 'layer', eps: c.num('layer_norm_epsilon', 1e-5), offset: 0 },
    norms: { input: 'ln_1', mlp: 'ln_2', final: 'transformer.ln_f' },
    qkNorm: null,
    attentionScale: 1 / Math.sqrt(shape.headDim),
    rotaryDims: 0,
    ropes: [],
    layers: layerTable(Array<boolean>(shape.numLayers).fill(false), null, () => null, c),
    activation: 'gelu_tanh',
    gatedMlp: false,
    embedding: 'transformer.wte',
    embedScale: 1,
    positions: 'transformer.wpe',
    head: 'transformer.wte',
    finalSoftcap: null,
  };
  const config = modelConfig(c, shape, arch, {
    intermediateSize: inner,
    maxPositions: c.int('n_positions', 1024),
    tieWordEmbeddings: true,
  });
  return {
    ...config,
    bosTokenId: typeof c.json.bos_token_id === 'number' ? c.json.bos_token_id : 50256,
  };
}

export const gpt2: Family = {
  name: 'gpt2',
  modelTypes: ['gpt2'],
  build,
  example: {
    model_type: 'gpt2',
    n_embd: 12,
    n_head: 3,
    n_layer: 2,
    n_positions: 16,
    vocab_size: 19,
  },
  gguf: {
    arch: 'gpt2',
    tensors: {
      c_attn: 'attn_qkv',
      'attn.c_proj': 'attn_output',
      c_fc: 'ffn_up',
      'mlp.c_proj': 'ffn_down',
    },
    permuteQK: false,
    // The converter (GPT2Model) transposes the Conv1D weights to [out, in] and writes the tied
    // head again as output.weight, which the loader leaves unread as it does lm_head here.
    config: (h) => ({
      model_type: 'gpt2',
      n_embd: h.num('embedding_length'),
      n_head: h.num('attention.head_count'),
      n_layer: h.num('block_count'),
      n_inner: h.num('feed_forward_length'),
      n_positions: h.num('context_length'),
      layer_norm_epsilon: h.num('attention.layer_norm_epsilon'),
    }),
  },
  // The original checkpoints (openai-community/gpt2) name tensors without `transformer.`.
  canonicalName: (name) =>
    name.startsWith('transformer.') || name.startsWith('lm_head.') ? name : `transformer.${name}`,
};
