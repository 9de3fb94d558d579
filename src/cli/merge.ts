import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { gpuCompute } from '../merge/compute.ts';
import { cpuCompute } from '../merge/cpu/compute.ts';
import { mergeAdapters } from '../merge/merge.ts';
import { parseMergekitYaml } from '../merge/mergekit.ts';
import { mergedFiles, readRecipe } from '../merge/recipe.ts';
import {
  GRID_PRESETS,
  gridPreset,
  METHOD_NAMES,
  type GridPreset,
  type LayerGrid,
  type MergeMethod,
  type MergeSpec,
} from '../merge/spec.ts';
import { isAttentionKind, moduleKind, moduleOrder } from '../model/families.ts';
import { readAdapterDir } from './adapters.ts';
import { parseOptions, UsageError } from './args.ts';
import { gpuOrCpu } from './device.ts';
import { writeFiles } from './files.ts';
import { applyOptions, MERGE_VALUES, mergeHelp, numbers } from './merge-options.ts';

/** `--layer-weights FILE`: JSON {"modules": […], "weights": [[…], …]} or {"preset": NAME}. */
async function layerGrid(
  file: string,
  numLayers: number,
  modules: readonly string[],
): Promise<LayerGrid> {
  const json = JSON.parse(await readFile(file, 'utf8')) as Partial<LayerGrid> & { preset?: string };
  if (json.preset !== undefined) {
    if (!GRID_PRESETS.includes(json.preset as GridPreset))
      throw new UsageError(`${file}: preset must be one of ${GRID_PRESETS.join(', ')}`);
    return gridPreset(json.preset as GridPreset, numLayers, modules, isAttentionKind);
  }
  if (!Array.isArray(json.modules) || !Array.isArray(json.weights))
    throw new UsageError(
      `${file}: expected {"modules": [...], "weights": [[...], ...]} or {"preset": ...}`,
    );
  return { modules: json.modules, weights: json.weights };
}

/** The spec and adapter folders from --recipe, --config or the command line. */
async function specFromArgs(
  values: Map<string, string>,
  positionals: string[],
): Promise<{ spec: MergeSpec; dirs: string[] }> {
  const recipe = values.get('recipe');
  if (recipe) {
    const spec = readRecipe(await readFile(recipe, 'utf8'), recipe);
    const dirs = positionals.length > 0 ? positionals : spec.adapters.map((a) => a.id);
    return { spec, dirs };
  }
  const config = values.get('config');
  if (config) {
    const { spec, models } = parseMergekitYaml(await readFile(config, 'utf8'));
    return { spec, dirs: models };
  }
  const method = values.get('method') as MergeMethod | undefined;
  if (!method || !METHOD_NAMES.includes(method))
    throw new UsageError(
      `--method must be one of ${METHOD_NAMES.join(', ')} (or give --config / --recipe)`,
    );
  if (positionals.length === 0) throw new UsageError('at least one adapter folder is required');
  const weights = values.has('weights')
    ? numbers(values.get('weights')!, '--weights')
    : positionals.map(() => 1);
  if (weights.length !== positionals.length)
    throw new UsageError(`--weights needs ${positionals.length} numbers, one per adapter`);
  return {
    spec: { method, adapters: positionals.map((dir, i) => ({ id: dir, weight: weights[i] })) },
    dirs: positionals,
  };
}

/**
 * `lora-studio merge --method NAME [options] ADAPTER_DIR… --out DIR`, or `--config mergekit.yaml`,
 * or `--recipe merge_recipe.json` (replays a merge): writes the merged PEFT adapter, its
 * merge_recipe.json and a model card to DIR, and a JSON summary on stdout. `--help` explains
 * the methods and options.
 */
export async function merge(args: string[]): Promise<number> {
  if (args.includes('--help')) {
    console.log(mergeHelp());
    return 0;
  }
  const { values, flags, positionals } = parseOptions(args, {
    values: MERGE_VALUES,
    flags: ['cpu'],
    positionals: true,
  });
  const out = values.get('out');
  if (!out) throw new UsageError('--out DIR is required');
  const { spec: given, dirs } = await specFromArgs(values, positionals);
  const adapters = await Promise.all(dirs.map(readAdapterDir));
  const numLayers =
    Math.max(
      ...adapters.flatMap((a) =>
        [...a.modules.keys()].map((p) => Number(/\.(\d+)\./.exec(p)?.[1] ?? 0)),
      ),
    ) + 1;
  const spec = applyOptions(given, values);
  const layerWeights = values.get('layer-weights');
  if (layerWeights) {
    // A preset's columns: the module types the adapters have.
    const types = adapters.flatMap((a) => [...a.modules.keys()].map(moduleKind));
    spec.layerGrid = await layerGrid(
      layerWeights,
      numLayers,
      [...new Set(types)].sort(moduleOrder),
    );
  }
  const gpu = await gpuOrCpu('merge', flags.has('cpu'));
  try {
    const outcome = await mergeAdapters(gpu ? gpuCompute(gpu) : cpuCompute, adapters, spec, {
      numLayers,
      onProgress: (done, total) => process.stderr.write(`\rmerging modules ${done}/${total}`),
    });
    process.stderr.write('\n');
    await writeFiles(out, mergedFiles(outcome, adapters, basename(out)));
    console.log(
      JSON.stringify({
        method: outcome.spec.method,
        rank: outcome.adapter.rank,
        modules: outcome.adapter.modules.length,
        lost_energy: outcome.lostEnergy,
        out,
      }),
    );
    return 0;
  } finally {
    gpu?.destroy();
  }
}
