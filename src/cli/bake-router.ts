import { readFile } from 'node:fs/promises';
import { acquireGpu } from '../gpu/device.ts';
import { nodeGpuEntry } from '../gpu/node.ts';
import { nodeShaders } from '../gpu/shaders-node.ts';
import { createGpuModel } from '../model/forward.ts';
import { loadModelFromPath } from '../model/load-node.ts';
import { bakeAndMeasure } from '../routing/bake.ts';
import { RoutedAdapter } from '../routing/router.ts';
import { decodeUtf8Text, prepareDataset } from '../train/data.ts';
import { numberOption, parseOptions, UsageError } from './args.ts';
import { BUILT_IN_MODEL } from './built-in.ts';
import { writeFiles } from './files.ts';
import { readRouterDir } from './router-option.ts';

export const BAKE_ROUTER_SUMMARY =
  "bake a router folder into one plain PEFT LoRA: --router DIR --data FILE --out DIR [--model PATH (default: the built-in stories260K)] [--seq-len T]; each module's gates become their mean over the text (learned scales: exactly), the experts' factors stacked; reports the text's loss routed and baked; JSON summary on stdout";

/** `lora-studio bake-router --router DIR --data FILE --out DIR`: see BAKE_ROUTER_SUMMARY. */
export async function bakeRouter(args: string[]): Promise<number> {
  const { values } = parseOptions(args, {
    values: ['router', 'data', 'out', 'model', 'tokenizer', 'seq-len'],
  });
  const dir = values.get('router');
  const dataPath = values.get('data');
  const out = values.get('out');
  if (!dir || !dataPath || !out)
    throw new UsageError('--router DIR, --data FILE and --out DIR are required');
  const loaded = await loadModelFromPath(
    values.get('model') ?? BUILT_IN_MODEL,
    values.get('tokenizer'),
  );
  const { config } = loaded;
  const state = await readRouterDir(dir, loaded);
  const seqLen = numberOption(values, 'seq-len', Math.min(128, config.maxPositions));
  const sequences = prepareDataset(
    decodeUtf8Text(new Uint8Array(await readFile(dataPath)), dataPath),
    dataPath,
    loaded.tokenizer,
    { seqLen, validationFraction: 0, seed: 0 },
  ).train;
  const gpu = await acquireGpu(nodeGpuEntry(), { shaders: nodeShaders });
  const model = createGpuModel(gpu, config, loaded.weights);
  const routed = RoutedAdapter.create(gpu, state, false);
  try {
    const { files, gates, routedLoss, bakedLoss } = await bakeAndMeasure(
      gpu,
      model.base,
      routed,
      sequences,
      sequences,
      loaded.hubId ?? loaded.name,
    );
    await writeFiles(out, files);
    const experts = state.experts.map((name, e) => {
      const own = [...gates.values()].filter((g) => g.length > e).map((g) => g[e]);
      return { name, mean_gate: own.reduce((a, b) => a + b, 0) / Math.max(1, own.length) };
    });
    console.log(
      JSON.stringify(
        {
          out,
          mode: state.mode,
          modules: state.modules.length,
          experts,
          routed_loss: routedLoss,
          baked_loss: bakedLoss,
          cost: routedLoss !== null && bakedLoss !== null ? bakedLoss - routedLoss : null,
        },
        null,
        2,
      ),
    );
    return 0;
  } finally {
    routed.dispose();
    model.dispose();
    gpu.destroy();
  }
}
