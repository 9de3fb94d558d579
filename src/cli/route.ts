import { readFile } from 'node:fs/promises';
import { basename, relative, resolve } from 'node:path';
import type { PeftAdapter } from '../adapters/peft-read.ts';
import { acquireGpu } from '../gpu/device.ts';
import { nodeGpuEntry } from '../gpu/node.ts';
import { nodeShaders } from '../gpu/shaders-node.ts';
import { sha256Hex } from '../hash.ts';
import { createGpuModel } from '../model/forward.ts';
import { namesModel } from '../model/load.ts';
import { loadModelFromPath } from '../model/load-node.ts';
import { WEIGHT_PRECISIONS } from '../model/weights.ts';
import { routerFiles, type ExpertRecord } from '../routing/files.ts';
import { ROUTING_MODE_NAMES, routingMode } from '../routing/modes.ts';
import {
  adapterRouterState,
  RoutedAdapter,
  trainedRouterState,
  type RouterState,
} from '../routing/router.ts';
import {
  DEFAULT_ROUTE_SETTINGS,
  routingUsage,
  trainRouter,
  validationLoss,
} from '../routing/train.ts';
import { decodeUtf8Text, prepareDataset } from '../train/data.ts';
import { adapterDirFiles, parseAdapterOption, readAdapterDir } from './adapters.ts';
import { choiceOption, numberOption, parseOptions, UsageError } from './args.ts';
import { BUILT_IN_MODEL } from './built-in.ts';
import { writeFiles } from './files.ts';

export const ROUTE_SUMMARY = `train a router between adapters, or experts with their routers (docs/routing.md): --mode ${ROUTING_MODE_NAMES.join('|')} --data FILE --out DIR [--adapters DIR[:WEIGHT]…] (scales, token) [--model PATH (default: the built-in stories260K)] [--top-k K] [--steps N] [--lr LR] [--batch B] [--seq-len T] [--eval-every N] [--val-fraction F] [--balance A (load-balancing loss weight)] [--per-layer (scales)] [--experts E | --layer-experts E1,E2,… (mixlora)] [--rank R] [--alpha A] [--targets attention|all-linear|LIST] [--nonzeros P (flylora)] [--seed S]; writes router.json + router.safetensors; JSON summary on stdout`;

const integer = (values: Map<string, string>, name: string, fallback: number) => {
  const n = numberOption(values, name, fallback);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${name} must be a whole number ≥ 0`);
  return n;
};

/**
 * `lora-studio route --mode M --data FILE --out DIR [--adapters DIR…]`: trains what the mode
 * trains on the data, reports the validation loss before and after (and, for routers, which
 * expert the gates chose on the validation text), and writes the router folder.
 */
export async function route(args: string[]): Promise<number> {
  const { values, flags, lists, positionals } = parseOptions(args, {
    values: [
      'mode',
      'data',
      'out',
      'model',
      'tokenizer',
      'top-k',
      'steps',
      'lr',
      'batch',
      'seq-len',
      'eval-every',
      'val-fraction',
      'balance',
      'experts',
      'layer-experts',
      'rank',
      'alpha',
      'targets',
      'nonzeros',
      'seed',
      'weights',
    ],
    flags: ['per-layer'],
    lists: ['adapters', 'adapter'],
    positionals: true,
  });
  const given = [...(lists.get('adapters') ?? []), ...(lists.get('adapter') ?? [])];
  // `--adapters A B C`: the folders after the option are positional.
  if (positionals.length > 0 && given.length === 0)
    throw new UsageError(`unexpected argument ${positionals[0]}`);
  const adapterArgs = [...given, ...positionals];
  const modeName = values.get('mode');
  if (!modeName) throw new UsageError(`--mode is required: ${ROUTING_MODE_NAMES.join(', ')}`);
  const mode = choiceOption(values, 'mode', ROUTING_MODE_NAMES, 'token');
  const entry = routingMode(mode);
  const dataPath = values.get('data');
  const out = values.get('out');
  if (!dataPath || !out) throw new UsageError('--data FILE and --out DIR are required');
  if (entry.experts === 'adapters' && adapterArgs.length === 0)
    throw new UsageError(`--mode ${mode} routes between adapters: give them with --adapters DIR…`);
  if (entry.experts === 'trained' && adapterArgs.length > 0)
    throw new UsageError(`--mode ${mode} trains its own experts; it takes no --adapters`);

  const modelPath = values.get('model') ?? BUILT_IN_MODEL;
  const loaded = await loadModelFromPath(modelPath, values.get('tokenizer'));
  const { config } = loaded;
  const seed = integer(values, 'seed', DEFAULT_ROUTE_SETTINGS.seed);
  const topK = values.has('top-k') ? integer(values, 'top-k', 0) : undefined;
  const balance = numberOption(values, 'balance', entry.gate === 'router' ? 0.01 : 0);
  if (!(balance >= 0)) throw new UsageError('--balance must be ≥ 0');

  let state: RouterState;
  const experts: ExpertRecord[] = [];
  if (entry.experts === 'adapters') {
    const adapters: { adapter: PeftAdapter; weight: number }[] = [];
    for (const option of adapterArgs) {
      const { dir, weight } = parseAdapterOption(option);
      // Named by its folder: what router.json and the reports call it.
      const adapter = { ...(await readAdapterDir(dir)), name: basename(resolve(dir)) };
      if (adapter.baseModel && !namesModel(loaded, adapter.baseModel))
        console.error(
          `note: ${dir} was trained on ${adapter.baseModel}; the model is ${loaded.name}`,
        );
      const tensors = (await adapterDirFiles(dir)).get('adapter_model.safetensors');
      experts.push({
        name: adapter.name,
        path: relative(resolve(out), resolve(dir)) || '.',
        ...(tensors ? { sha256: await sha256Hex(tensors) } : {}),
      });
      adapters.push({ adapter, weight });
    }
    state = adapterRouterState(config, adapters, mode, {
      topK,
      balance,
      perLayer: flags.has('per-layer'),
      seed,
    });
  } else {
    const layerExperts = values.get('layer-experts');
    const counts = layerExperts?.split(',').map(Number);
    if (counts?.some((n) => !Number.isInteger(n) || n < 1))
      throw new UsageError('--layer-experts takes whole numbers ≥ 1, bottom layers first: 2,4,6,8');
    const rank = integer(values, 'rank', entry.rankOneExperts ? 8 : 4);
    state = trainedRouterState(config, mode, {
      targets: (values.get('targets') ?? 'all-linear').split(','),
      experts: counts ?? integer(values, 'experts', 4),
      rank,
      alpha: numberOption(values, 'alpha', 2 * rank),
      topK,
      balance,
      seed,
      ...(values.has('nonzeros') ? { nonZeros: integer(values, 'nonzeros', 1) } : {}),
    });
    experts.push(...state.experts.map((name) => ({ name })));
  }

  const lr = numberOption(
    values,
    'lr',
    entry.experts === 'trained' ? 5e-3 : DEFAULT_ROUTE_SETTINGS.lr,
  );
  if (!(lr > 0)) throw new UsageError('--lr must be positive');
  const settings = {
    ...DEFAULT_ROUTE_SETTINGS,
    steps: integer(values, 'steps', DEFAULT_ROUTE_SETTINGS.steps),
    lr,
    batchSize: Math.max(1, integer(values, 'batch', DEFAULT_ROUTE_SETTINGS.batchSize)),
    evalEvery: integer(values, 'eval-every', DEFAULT_ROUTE_SETTINGS.evalEvery),
    seed,
  };
  const data = prepareDataset(
    decodeUtf8Text(new Uint8Array(await readFile(dataPath)), dataPath),
    dataPath,
    loaded.tokenizer,
    {
      seqLen: integer(values, 'seq-len', Math.min(128, config.maxPositions)),
      validationFraction: numberOption(values, 'val-fraction', 0.1),
      seed,
    },
  );
  const s = data.summary;
  console.error(
    `data: ${s.examples} examples, ${s.tokens} tokens, ${s.trainSequences} train / ${s.validationSequences} validation sequences`,
  );

  const gpu = await acquireGpu(nodeGpuEntry(), { shaders: nodeShaders });
  const model = createGpuModel(
    gpu,
    config,
    loaded.weights,
    choiceOption(values, 'weights', WEIGHT_PRECISIONS, 'file'),
  );
  const routed = RoutedAdapter.create(gpu, state, true);
  try {
    const base = model.transformer;
    const baseLoss = await validationLoss(gpu, base, data.validation, settings.batchSize);
    const started = performance.now();
    const { history, failure } = await trainRouter(gpu, base, routed, data, settings, (p) => {
      const parts = [`step ${p.step}/${settings.steps}`];
      if (p.loss !== undefined) parts.push(`loss ${p.loss.toFixed(4)}`);
      if (p.valLoss !== undefined) parts.push(`val ${p.valLoss.toFixed(4)}`);
      if (p.gradNorm !== undefined) parts.push(`|g| ${p.gradNorm.toFixed(3)}`);
      console.error(parts.join('  '));
      return true;
    });
    if (failure) throw new RangeError(`${failure}; nothing written`);
    const seconds = (performance.now() - started) / 1000;
    const trained = await routed.read();
    const valLosses = history.flatMap((p) => (p.valLoss === undefined ? [] : [p.valLoss]));
    const usage =
      entry.gate === 'scales'
        ? null
        : await routingUsage(gpu, base, routed, data.validation.slice(0, 8));
    const training = {
      data: basename(dataPath),
      steps: settings.steps,
      lr: settings.lr,
      batch: settings.batchSize,
      seed,
      base_val_loss: baseLoss,
      initial_val_loss: valLosses[0] ?? null,
      final_val_loss: valLosses.at(-1) ?? null,
    };
    await writeFiles(
      out,
      routerFiles(trained, {
        baseModel: loaded.hubId ?? loaded.name,
        experts,
        training,
      }),
    );
    console.log(
      JSON.stringify(
        {
          out,
          mode,
          paper: entry.paper,
          experts: state.experts,
          top_k: trained.topK,
          modules: trained.modules.length,
          parameters: routed.parameters().reduce((n, p) => n + p.value.numel, 0),
          ...training,
          seconds,
          ...(trained.scales.size > 0
            ? {
                scales: Object.fromEntries([...trained.scales].map(([g, v]) => [g, Array.from(v)])),
              }
            : {}),
          ...(usage ? { validation_token_shares: usage.shares, layer_usage: usage.perLayer } : {}),
          history,
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
