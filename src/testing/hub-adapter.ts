// A small real adapter for the Hub push tests: a random rank-4 LoRA on q, k, v and down of both
// layers of the GGUF Llama fixture's config, as PEFT files (with a model card and a merge
// recipe), and the same adapter as a llama.cpp GGUF LoRA.
import { ggufLoraFile } from '../adapters/gguf.ts';
import { peftFiles } from '../adapters/peft.ts';
import { readPeftAdapter } from '../adapters/peft-read.ts';
import { modulePath } from '../model/architecture.ts';
import { parseHfConfig } from '../model/hf-config.ts';
import { fixtureJson } from './fixtures.ts';
import { randomArray, seededRandom } from './random.ts';

export const TEST_BASE_MODEL = 'unsloth/Llama-3.2-1B-Instruct';

export interface TestAdapter {
  /** adapter_config.json, adapter_model.safetensors, README.md, merge_recipe.json. */
  files: Map<string, Uint8Array>;
  gguf: Uint8Array;
}

export function hubTestAdapter(baseModel = TEST_BASE_MODEL, seed = 5): TestAdapter {
  const config = parseHfConfig(fixtureJson('models/gguf/llama/hf/config.json'));
  const random = seededRandom(seed);
  const names = ['q_proj', 'k_proj', 'v_proj', 'down_proj'];
  const specs = config.arch.modules.filter((m) => names.includes(m.name));
  const modules = [0, 1].flatMap((layer) =>
    specs.map((m) => ({
      path: modulePath(config.arch, layer, m),
      layer,
      rank: 4,
      alpha: 8,
      in: m.in,
      out: m.out,
      a: randomArray(random, 4 * m.in, -0.2, 0.2),
      b: randomArray(random, m.out * 4, -0.2, 0.2),
    })),
  );
  const files = peftFiles({
    modules,
    rank: 4,
    alpha: 8,
    rslora: false,
    targets: names,
    dropout: 0,
    initLoraWeights: true,
    baseModel,
    numLayers: 2,
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
