// Qwen3 (0.6B … 32B dense): Llama-style layers with an RMSNorm over each head's q and k (one
// [head_dim] weight shared by the heads) before RoPE, head_dim decoupled from hidden/heads, no
// q/k/v bias; sliding-window layers when use_sliding_window is set.
import { buildLlamaStyle, LLAMA_GGUF_TENSORS, llamaStyleGgufConfig } from './llama.ts';
import type { Family } from './common.ts';

export const qwen3: Family = {
  name: 'qwen3',
  modelTypes: ['qwen3'],
  build: (c) =>
    buildLlamaStyle(c, 'qwen3', () => ({
      qkNorm: { q: 'self_attn.q_norm', k: 'self_attn.k_norm' },
    })),
  gguf: {
    arch: 'qwen3',
    tensors: LLAMA_GGUF_TENSORS,
    permuteQK: false,
    config: llamaStyleGgufConfig('qwen3'),
  },
  example: {
    model_type: 'qwen3',
    hidden_size: 12,
    intermediate_size: 18,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 8,
    vocab_size: 19,
    max_position_embeddings: 16,
    tie_word_embeddings: true,
    layer_types: ['sliding_attention', 'full_attention'],
    sliding_window: 3,
  },
};
