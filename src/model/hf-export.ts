// Writing a model as a Hugging Face folder: config.json and one F32 model.safetensors.
import type { ModelConfig } from './config.ts';
import { expectedWeights } from './hf-config.ts';
import { writeSafetensors } from './safetensors.ts';
import type { ModelWeights } from './weights.ts';

/** config.json for a Llama-architecture model (what transformers' LlamaConfig reads). */
export function hfConfigJson(config: ModelConfig): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: config.hiddenSize,
    intermediate_size: config.intermediateSize,
    num_hidden_layers: config.numLayers,
    num_attention_heads: config.numHeads,
    num_key_value_heads: config.numKvHeads,
    head_dim: config.headDim,
    vocab_size: config.vocabSize,
    max_position_embeddings: config.maxPositions,
    rms_norm_eps: config.rmsNormEps,
    rope_theta: config.ropeTheta,
    tie_word_embeddings: config.tieWordEmbeddings,
    attention_bias: config.attentionBias,
    hidden_act: 'silu',
    bos_token_id: config.bosTokenId,
    eos_token_id: config.eosTokenIds.length === 1 ? config.eosTokenIds[0] : config.eosTokenIds,
    torch_dtype: 'float32',
  };
}

/** The folder's files: config.json and model.safetensors (weights in HF order). */
export function hfFolderFiles(config: ModelConfig, weights: ModelWeights): Map<string, Uint8Array> {
  const tensors = [...expectedWeights(config).keys()].map((name) => {
    const t = weights.get(name);
    if (!t) throw new Error(`missing weight ${name}`);
    return { name, shape: t.shape, data: t.data };
  });
  return new Map([
    ['config.json', new TextEncoder().encode(`${JSON.stringify(hfConfigJson(config), null, 2)}\n`)],
    ['model.safetensors', writeSafetensors(tensors, { format: 'pt' })],
  ]);
}
