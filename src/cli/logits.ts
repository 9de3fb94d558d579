// `lora-studio logits`: the raw logits of a model (with adapters) for token ids given exactly as
// they are — no BOS, no template — for comparing with other implementations (transformers,
// llama.cpp). Each --ids row runs from position 0 on its own.
import { adaptedCpuModel, adaptedGpuModel } from '../adapters/adapted-model.ts';
import { loadWeightsFromPath } from '../model/load-node.ts';
import { WEIGHT_PRECISIONS } from '../model/weights.ts';
import { adapterOptions } from './adapters.ts';
import { choiceOption, parseOptions, UsageError } from './args.ts';
import { gpuOrCpu } from './device.ts';
import { applyRouterOption } from './router-option.ts';
import type { RoutedAdapter } from '../routing/router.ts';

/** `--ids 1,2,3`: token ids within the vocabulary. */
function idsOption(raw: string, vocab: number, maxPositions: number): number[] {
  const ids = raw.split(',').map((s) => Number(s.trim()));
  const bad = ids.find((id) => !(Number.isInteger(id) && id >= 0 && id < vocab));
  if (raw.trim() === '' || bad !== undefined)
    throw new UsageError(
      `--ids ${raw}: expected comma-separated token ids in 0…${vocab - 1}, got ${raw.trim() === '' ? 'nothing' : bad}`,
    );
  if (ids.length > maxPositions)
    throw new UsageError(`--ids: ${ids.length} ids exceed the model's ${maxPositions} positions`);
  return ids;
}

/**
 * `lora-studio logits --model DIR [--adapter DIR[:W]]… [--router DIR] --ids 1,2,3 [--ids …]
 * [--positions all|last] [--weights …] [--cpu]`: JSON `{"logits": [[[…]]]}` on stdout, batch ×
 * positions × vocab (positions: every one, or the last).
 */
export async function logits(args: string[]): Promise<number> {
  const { values, lists, flags } = parseOptions(args, {
    lists: ['adapter', 'ids'],
    flags: ['cpu', 'force'],
    values: ['model', 'positions', 'weights', 'router'],
  });
  const path = values.get('model');
  const rows = lists.get('ids') ?? [];
  if (!path || rows.length === 0)
    throw new UsageError('usage: logits --model DIR --ids 1,2,3 [--ids …] [--adapter DIR[:W]]…');
  const positions = choiceOption(values, 'positions', ['all', 'last'] as const, 'all');
  const precision = choiceOption(values, 'weights', WEIGHT_PRECISIONS, 'file');
  const { name, config, weights } = await loadWeightsFromPath(path);
  const batch = rows.map((raw) => idsOption(raw, config.vocabSize, config.maxPositions));
  const composition = await adapterOptions(
    { name, config },
    lists.get('adapter') ?? [],
    flags.has('force'),
  );
  const gpu = await gpuOrCpu('logits', flags.has('cpu'));
  const model = gpu
    ? adaptedGpuModel(gpu, config, weights, precision)
    : adaptedCpuModel(config, weights, precision);
  let routed: RoutedAdapter | null = null;
  try {
    await model.apply(composition);
    routed = await applyRouterOption(
      values.get('router'),
      { name, config },
      model,
      lists.get('adapter') ?? [],
    );
    const V = config.vocabSize;
    // Row by row: a long batch over a large vocabulary is never one string in memory.
    process.stdout.write('{"logits": [');
    for (const [b, ids] of batch.entries()) {
      const all = positions === 'all';
      const out = all ? await model.forwardAll(ids, 0) : await model.forward(ids, 0);
      const count = out.length / V;
      const lines = Array.from({ length: count }, (_, t) =>
        JSON.stringify(Array.from(out.subarray(t * V, (t + 1) * V))),
      );
      process.stdout.write(`${b > 0 ? ',\n' : ''}[${lines.join(',\n')}]`);
    }
    process.stdout.write(']}\n');
    return 0;
  } finally {
    routed?.dispose();
    model.dispose();
    gpu?.destroy();
  }
}
