// SmolLM3: Llama-style layers where some use no positions at all (NoPE): `no_rope_layers[l]` is
// 1 where layer l applies RoPE, or every `no_rope_layer_interval`-th layer skips it.
import { buildLlamaStyle, LLAMA_GGUF_TENSORS, llamaStyleGgufConfig } from './llama.ts';
import type { ConfigReader, Family } from './common.ts';

function usesRope(c: ConfigReader, numLayers: number): boolean[] {
  const listed = c.json.no_rope_layers;
  if (Array.isArray(listed)) {
    if (listed.length !== numLayers)
      c.fail(`no_rope_layers lists ${listed.length} layers, num_hidden_layers is ${numLayers}`);
    return listed.map((v) => v !== 0);
  }
  const interval = c.int('no_rope_layer_interval', 4);
  return Array.from({ length: numLayers }, (_, l) => (l + 1) % interval !== 0);
}

export const smollm3: Family = {
  name: 'smollm3',
  modelTypes: ['smollm3'],
  build: (c) =>
    buildLlamaStyle(c, 'smollm3', (arch) => {
      const rope = usesRope(c, arch.layers.length);
      return { layers: arch.layers.map((layer, l) => ({ ...layer, rope: rope[l] ? 0 : null })) };
    }),
  // llama.cpp converts SmolLM3 with its Llama converter, which permutes q/k rows. Its files
  // store no NoPE layout: llama-model.cpp fixes every 4th layer (n_no_rope_layer_step), which is
  // the builder's default no_rope_layer_interval.
  gguf: {
    arch: 'smollm3',
    tensors: LLAMA_GGUF_TENSORS,
    permuteQK: true,
    config: llamaStyleGgufConfig('smollm3'),
  },
  example: {
    model_type: 'smollm3',
    hidden_size: 12,
    intermediate_size: 18,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 1,
    head_dim: 6,
    vocab_size: 19,
    max_position_embeddings: 16,
    tie_word_embeddings: true,
    no_rope_layers: [1, 0],
  },
};
