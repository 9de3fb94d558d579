import { readFile } from 'node:fs/promises';
import { acquireGpu } from '../gpu/device.ts';
import { nodeGpuEntry } from '../gpu/node.ts';
import { nodeShaders } from '../gpu/shaders-node.ts';
import { createGpuModel } from '../model/forward.ts';
import { loadModelFromPath } from '../model/load-node.ts';
import { WEIGHT_PRECISIONS } from '../model/weights.ts';
import { meanLoss } from '../model/perplexity.ts';
import { applyAdapterOptions } from './adapters.ts';
import { choiceOption, parseOptions } from './args.ts';

/** `lora-studio perplexity --model PATH [--tokenizer PATH] --data FILE`: JSON on stdout. */
export async function perplexity(args: string[]): Promise<number> {
  const { values, lists } = parseOptions(args, {
    lists: ['adapter'],
    values: ['model', 'tokenizer', 'data', 'weights'],
  });
  const path = values.get('model');
  const data = values.get('data');
  if (!path || !data) throw new Error('--model PATH and --data FILE are required');
  const { config, weights, tokenizer, name } = await loadModelFromPath(
    path,
    values.get('tokenizer'),
  );
  const tokens = tokenizer.encode(await readFile(data, 'utf8'));
  const gpu = await acquireGpu(nodeGpuEntry(), { shaders: nodeShaders });
  const model = createGpuModel(
    gpu,
    config,
    weights,
    choiceOption(values, 'weights', WEIGHT_PRECISIONS, 'file'),
  );
  let releaseAdapters: () => void = () => undefined;
  try {
    releaseAdapters = await applyAdapterOptions(gpu, model, name, lists.get('adapter') ?? []);
    console.log(JSON.stringify(await meanLoss(model, tokens)));
    return 0;
  } finally {
    releaseAdapters();
    model.dispose();
    gpu.destroy();
  }
}
