import { peftFiles } from '../adapters/peft.ts';
import { acquireGpu } from '../gpu/device.ts';
import { nodeGpuEntry } from '../gpu/node.ts';
import { nodeShaders } from '../gpu/shaders-node.ts';
import { mergeExact, type ExactMethod } from '../merge/exact.ts';
import { readAdapterDir } from './adapters.ts';
import { numberOption, parseOptions } from './args.ts';
import { writeFiles } from './files.ts';

const METHODS: readonly ExactMethod[] = ['cat', 'svd', 'linear'];

/**
 * `lora-studio merge --method cat|svd|linear [--weights w1,w2,…] [--rank K] --out DIR ADAPTER_DIR…`:
 * writes the merged adapter (PEFT files) and its recipe (merge_recipe.json) to DIR, and a JSON
 * summary on stdout.
 */
export async function merge(args: string[]): Promise<number> {
  const { values, positionals } = parseOptions(args, {
    values: ['method', 'weights', 'rank', 'out'],
    positionals: true,
  });
  const method = values.get('method') as ExactMethod | undefined;
  const out = values.get('out');
  if (!method || !METHODS.includes(method))
    throw new Error(`--method must be one of ${METHODS.join(', ')}`);
  if (!out || positionals.length === 0)
    throw new Error('--out DIR and at least one adapter folder are required');
  const weights = values.get('weights')?.split(',').map(Number) ?? positionals.map(() => 1);
  if (weights.length !== positionals.length || weights.some((w) => !Number.isFinite(w)))
    throw new Error(`--weights needs ${positionals.length} numbers, one per adapter`);
  const rank = values.has('rank') ? numberOption(values, 'rank', 0) : undefined;
  const inputs = await Promise.all(
    positionals.map(async (dir, i) => ({ adapter: await readAdapterDir(dir), weight: weights[i] })),
  );
  const gpu = await acquireGpu(nodeGpuEntry(), { shaders: nodeShaders });
  try {
    const result = await mergeExact(gpu, inputs, method, rank);
    const recipe = {
      method,
      rank: result.adapter.rank,
      adapters: positionals.map((dir, i) => ({
        path: dir,
        weight: weights[i],
        base_model: inputs[i].adapter.baseModel,
      })),
      ...(result.lostEnergy === undefined ? {} : { lost_energy: result.lostEnergy }),
    };
    const files = peftFiles(result.adapter);
    files.set(
      'merge_recipe.json',
      new TextEncoder().encode(JSON.stringify(recipe, null, 2) + '\n'),
    );
    await writeFiles(out, files);
    console.log(JSON.stringify({ ...recipe, modules: result.adapter.modules.length, out }));
    return 0;
  } finally {
    gpu.destroy();
  }
}
