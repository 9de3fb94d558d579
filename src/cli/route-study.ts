import { acquireGpu } from '../gpu/device.ts';
import { nodeGpuEntry } from '../gpu/node.ts';
import { nodeShaders } from '../gpu/shaders-node.ts';
import { createGpuModel } from '../model/forward.ts';
import { loadModelFromPath } from '../model/load-node.ts';
import { routingStudy, routingTables } from '../studies/routing-study.ts';
import { numberOption, parseOptions } from './args.ts';
import { BUILT_IN_MODEL } from './built-in.ts';

/**
 * `lora-studio route-study [--steps N] [--router-steps N] [--rank R] [--router-lr LR]`: trains a
 * Zimmy, a Snorp and a Momo adapter on the built-in stories260K, composes them statically and by
 * every routing mode, and prints docs/routing.md's table as markdown.
 */
export async function routeStudyCommand(args: string[]): Promise<number> {
  const { values } = parseOptions(args, {
    values: ['steps', 'router-steps', 'rank', 'router-lr', 'expert-lr'],
  });
  const { config, weights, tokenizer } = await loadModelFromPath(BUILT_IN_MODEL);
  const gpu = await acquireGpu(nodeGpuEntry(), { shaders: nodeShaders });
  const model = createGpuModel(gpu, config, weights);
  try {
    const study = await routingStudy(gpu, model, config, tokenizer, {
      adapters: {
        steps: numberOption(values, 'steps', 30),
        rank: numberOption(values, 'rank', 8),
        lr: 1e-2,
        seqLen: 64,
        stories: 60,
      },
      routerSteps: numberOption(values, 'router-steps', 60),
      routerLr: numberOption(values, 'router-lr', 1e-2),
      expertLr: numberOption(values, 'expert-lr', 1e-2),
      log: (line) => {
        console.error(line);
      },
    });
    console.log(routingTables(study));
    return 0;
  } finally {
    model.dispose();
    gpu.destroy();
  }
}
