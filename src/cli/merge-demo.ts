import { acquireGpu } from '../gpu/device.ts';
import { nodeGpuEntry } from '../gpu/node.ts';
import { nodeShaders } from '../gpu/shaders-node.ts';
import { demoTables, mergeDemo } from '../studies/merge-demo.ts';
import { createGpuModel } from '../model/forward.ts';
import { loadModelFromPath } from '../model/load-node.ts';
import { parseInit } from '../adapters/inits.ts';
import { BUILT_IN_MODEL } from './built-in.ts';
import { numberOption, parseOptions } from './args.ts';

/** The built-in model the app ships (public/models): the demo needs nothing else. */

/**
 * `lora-studio merge-demo [--steps N] [--rank R] [--init I]`: trains a Zimmy and a Snorp adapter
 * on the built-in stories260K (orthogonal: slices 0 and 1 of one basis), merges them by every
 * method and prints the merge report as markdown.
 */
export async function mergeDemoCommand(args: string[]): Promise<number> {
  const { values } = parseOptions(args, { values: ['steps', 'rank', 'init'] });
  const init = parseInit(values.get('init') ?? 'lora');
  const { config, weights, tokenizer } = await loadModelFromPath(BUILT_IN_MODEL);
  const gpu = await acquireGpu(nodeGpuEntry(), { shaders: nodeShaders });
  const model = createGpuModel(gpu, config, weights);
  try {
    const training = {
      steps: numberOption(values, 'steps', 30),
      rank: numberOption(values, 'rank', 8),
      lr: 1e-2,
      seqLen: 64,
      stories: 60,
      init,
    };
    const result = await mergeDemo(gpu, model, config, tokenizer, training, (line) => {
      console.error(line);
    });
    console.log(demoTables(result));
    return 0;
  } finally {
    model.dispose();
    gpu.destroy();
  }
}
