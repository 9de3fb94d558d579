// A small real adapter for the Hub push tests: a random rank-4 LoRA on q, k, v and down of both
// layers of the GGUF Llama fixture's config, as PEFT files (with a model card and a merge
// recipe), and the same adapter as a llama.cpp GGUF LoRA.
import { ggufLoraFile } from '../adapters/gguf.ts';
import { readPeftAdapter } from '../adapters/peft-read.ts';
import { parseHfConfig } from '../model/hf-config.ts';
import { fixtureJson } from './fixtures.ts';
import { randomAdapterFiles } from './random-adapter.ts';

export const TEST_BASE_MODEL = 'unsloth/Llama-3.2-1B-Instruct';

export interface TestAdapter {
  /** adapter_config.json, adapter_model.safetensors, README.md, merge_recipe.json. */
  files: Map<string, Uint8Array>;
  gguf: Uint8Array;
}

export function hubTestAdapter(baseModel = TEST_BASE_MODEL, seed = 5): TestAdapter {
  const config = parseHfConfig(fixtureJson('models/gguf/llama/hf/config.json'));
  const files = randomAdapterFiles(config, {
    seed,
    rank: 4,
    alpha: 8,
    range: 0.2,
    baseModel,
    modules: ['q_proj', 'k_proj', 'v_proj', 'down_proj'],
    layers: [0, 1],
  });
  const text = new TextEncoder();
  files.set(
    'README.md',
    text.encode(
      `---\nbase_model: ${baseModel}\nlibrary_name: peft\ntags: [lora, lora-studio]\n---\n\n# Test adapter\n`,
    ),
  );
  files.set('merge_recipe.json', text.encode('{"spec": {"method": "linear"}}\n'));
  const gguf = ggufLoraFile(readPeftAdapter(files, 'test'), { name: 'test', config }).bytes;
  return { files, gguf };
}
