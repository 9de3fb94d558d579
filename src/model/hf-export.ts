// Writing a model as a Hugging Face folder: config.json and one F32 model.safetensors, in the
// layout its family's checkpoints use.
import type { ModelConfig } from './config.ts';
import { expectedWeights } from './hf-config.ts';
import { writeSafetensors } from './safetensors.ts';
import { transpose } from './weights.ts';
import type { ModelWeights } from './weights.ts';

/**
 * config.json for a model: the one it was read from (llama2.c checkpoints get a Llama one), with
 * the dtype of the weights written here.
 */
export function hfConfigJson(config: ModelConfig): Record<string, unknown> {
  return { ...config.source, torch_dtype: 'float32' };
}

/** The folder's files: config.json and model.safetensors (weights in HF order). */
export function hfFolderFiles(config: ModelConfig, weights: ModelWeights): Map<string, Uint8Array> {
  const tensors = [...expectedWeights(config)].map(([name, expected]) => {
    const t = weights.get(name);
    if (!t) throw new Error(`missing weight ${name}`);
    // Conv1D weights go back to the [in, out] layout their checkpoints use.
    const data = expected.transposed ? transpose(t.data, t.shape[0], t.shape[1]) : t.data;
    return { name, shape: expected.shape, data };
  });
  return new Map([
    ['config.json', new TextEncoder().encode(`${JSON.stringify(hfConfigJson(config), null, 2)}\n`)],
    ['model.safetensors', writeSafetensors(tensors, { format: 'pt' })],
  ]);
}
