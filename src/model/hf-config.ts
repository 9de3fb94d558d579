// Hugging Face config.json for the Llama family → ModelConfig. Only what the forward pass
// implements is accepted; anything else is refused by name rather than run wrongly.
import type { ModelConfig } from './config.ts';
import { FormatError } from './errors.ts';

/** model_type values with the Llama architecture (Qwen2 adds q/k/v biases). */
export const SUPPORTED_MODEL_TYPES = ['llama', 'mistral', 'qwen2'] as const;

export function parseHfConfig(json: unknown, file = 'config.json'): ModelConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new FormatError(file, 'is not a JSON object');
  }
  const c = json as Record<string, unknown>;
  const modelType = c.model_type;
  if (
    typeof modelType !== 'string' ||
    !(SUPPORTED_MODEL_TYPES as readonly string[]).includes(modelType)
  ) {
    throw new FormatError(
      file,
      `model_type ${JSON.stringify(modelType)} is not supported (supported: ${SUPPORTED_MODEL_TYPES.join(', ')})`,
    );
  }
  const int = (key: string, fallback?: number): number => {
    const v = c[key] ?? fallback;
    if (!Number.isSafeInteger(v) || (v as number) <= 0) {
      throw new FormatError(
        file,
        `${key} must be a positive integer, got ${JSON.stringify(c[key])}`,
      );
    }
    return v as number;
  };
  const num = (key: string, fallback: number): number => {
    const v = c[key] ?? fallback;
    if (typeof v !== 'number' || !(v > 0))
      throw new FormatError(file, `${key} must be a positive number, got ${JSON.stringify(v)}`);
    return v;
  };
  const unsupported: string[] = [];
  const act = c.hidden_act ?? 'silu';
  if (act !== 'silu') unsupported.push(`hidden_act ${JSON.stringify(act)} (only "silu")`);
  const scaling = c.rope_scaling as { type?: string; rope_type?: string } | null | undefined;
  if (scaling)
    unsupported.push(`rope_scaling (${scaling.rope_type ?? scaling.type ?? 'unknown type'})`);
  if (c.mlp_bias === true) unsupported.push('mlp_bias');
  if (c.use_sliding_window === true) unsupported.push('use_sliding_window');
  if (unsupported.length > 0)
    throw new FormatError(file, `unsupported features: ${unsupported.join(', ')}`);

  const hiddenSize = int('hidden_size');
  const numHeads = int('num_attention_heads');
  const numKvHeads = int('num_key_value_heads', numHeads);
  const headDim = int('head_dim', hiddenSize / numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new FormatError(
      file,
      `num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`,
    );
  }
  if (headDim % 2 !== 0) throw new FormatError(file, `head_dim ${headDim} must be even for RoPE`);
  const eos = c.eos_token_id ?? 2;
  return {
    modelType,
    hiddenSize,
    intermediateSize: int('intermediate_size'),
    numLayers: int('num_hidden_layers'),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: int('vocab_size'),
    maxPositions: int('max_position_embeddings', 2048),
    rmsNormEps: num('rms_norm_eps', 1e-6),
    ropeTheta: num('rope_theta', 10000),
    tieWordEmbeddings: c.tie_word_embeddings === true,
    attentionBias: modelType === 'qwen2' || c.attention_bias === true,
    bosTokenId: typeof c.bos_token_id === 'number' ? c.bos_token_id : 1,
    eosTokenIds: (Array.isArray(eos) ? eos : [eos]).filter(
      (e): e is number => typeof e === 'number',
    ),
  };
}

/** Every weight the forward pass reads, with its shape. */
export function expectedWeights(config: ModelConfig): Map<string, number[]> {
  const { hiddenSize: d, intermediateSize: f, numHeads, numKvHeads, headDim, vocabSize } = config;
  const q = numHeads * headDim;
  const kv = numKvHeads * headDim;
  const out = new Map<string, number[]>([['model.embed_tokens.weight', [vocabSize, d]]]);
  for (let l = 0; l < config.numLayers; l++) {
    const p = `model.layers.${l}.`;
    out.set(`${p}input_layernorm.weight`, [d]);
    out.set(`${p}self_attn.q_proj.weight`, [q, d]);
    out.set(`${p}self_attn.k_proj.weight`, [kv, d]);
    out.set(`${p}self_attn.v_proj.weight`, [kv, d]);
    out.set(`${p}self_attn.o_proj.weight`, [d, q]);
    if (config.attentionBias) {
      out.set(`${p}self_attn.q_proj.bias`, [q]);
      out.set(`${p}self_attn.k_proj.bias`, [kv]);
      out.set(`${p}self_attn.v_proj.bias`, [kv]);
    }
    out.set(`${p}post_attention_layernorm.weight`, [d]);
    out.set(`${p}mlp.gate_proj.weight`, [f, d]);
    out.set(`${p}mlp.up_proj.weight`, [f, d]);
    out.set(`${p}mlp.down_proj.weight`, [d, f]);
  }
  out.set('model.norm.weight', [d]);
  if (!config.tieWordEmbeddings) out.set('lm_head.weight', [vocabSize, d]);
  return out;
}
