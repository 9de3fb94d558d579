import { readFile } from 'node:fs/promises';
import { adaptedCpuModel, adaptedGpuModel } from '../adapters/adapted-model.ts';
import { loadModelFromPath } from '../model/load-node.ts';
import { WEIGHT_PRECISIONS } from '../model/weights.ts';
import { decodeUtf8Text } from '../train/data.ts';
import { meanLoss, runnerScorer, textSequences } from '../train/evaluate.ts';
import { adapterOptions } from './adapters.ts';
import { parseOptions, choiceOption, UsageError } from './args.ts';
import { gpuOrCpu } from './device.ts';
import { applyRouterOption } from './router-option.ts';
import type { RoutedAdapter } from '../routing/router.ts';

/** `lora-studio perplexity --model PATH [--tokenizer PATH] --data FILE`: JSON on stdout. */
export async function perplexity(args: string[]): Promise<number> {
  const { values, lists, flags } = parseOptions(args, {
    lists: ['adapter'],
    flags: ['cpu', 'force'],
    values: ['model', 'tokenizer', 'data', 'weights', 'router'],
  });
  const path = values.get('model');
  const data = values.get('data');
  if (!path || !data) throw new UsageError('--model PATH and --data FILE are required');
  const { config, weights, tokenizer, name, hubId } = await loadModelFromPath(
    path,
    values.get('tokenizer'),
  );
  const tokens = tokenizer.encode(decodeUtf8Text(await readFile(data), data));
  const precision = choiceOption(values, 'weights', WEIGHT_PRECISIONS, 'file');
  const gpu = await gpuOrCpu('perplexity', flags.has('cpu'));
  const model = gpu
    ? adaptedGpuModel(gpu, config, weights, precision)
    : adaptedCpuModel(config, weights, precision);
  let routed: RoutedAdapter | null = null;
  try {
    await model.apply(
      await adapterOptions({ name, hubId, config }, lists.get('adapter') ?? [], flags.has('force')),
    );
    routed = await applyRouterOption(
      values.get('router'),
      { name, hubId, config },
      model,
      lists.get('adapter') ?? [],
    );
    const report = await meanLoss(runnerScorer(model), textSequences(tokens, config.maxPositions));
    if (!report) throw new RangeError(`${data}: perplexity needs at least two tokens of text`);
    console.log(JSON.stringify(report));
    return 0;
  } finally {
    routed?.dispose();
    model.dispose();
    gpu?.destroy();
  }
}
