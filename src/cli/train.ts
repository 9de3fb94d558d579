import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import {
  TARGET_PRESETS,
  type InitMethod,
  type LoraSpec,
  type OrthogonalBasis,
} from '../adapters/config.ts';
import { DEFAULT_BASIS, initEntry, parseInit, takesBasis } from '../adapters/inits.ts';
import { DEFAULT_DENSITY } from '../adapters/s2ft.ts';
import { PLAIN_VARIANT, VARIANT_NAMES, type VariantName } from '../adapters/variants.ts';
import { acquireGpu } from '../gpu/device.ts';
import { nodeGpuEntry } from '../gpu/node.ts';
import { nodeShaders } from '../gpu/shaders-node.ts';
import { createGpuModel } from '../model/forward.ts';
import { loadModelFromPath } from '../model/load-node.ts';
import { hfFolderFiles } from '../model/hf-export.ts';
import { baseModelId } from '../model/load.ts';
import { WEIGHT_PRECISIONS } from '../model/weights.ts';
import {
  CHECKPOINT_JSON,
  CHECKPOINT_TENSORS,
  checkpointFiles,
  checkpointFromFiles,
} from '../train/checkpoint-files.ts';
import { decodeUtf8Text, prepareDataset } from '../train/data.ts';
import { SCHEDULES } from '../train/schedule.ts';
import {
  DEFAULT_SETTINGS,
  train as runTraining,
  TrainControl,
  type Checkpoint,
  type DataIdentity,
  type TrainConfig,
  type TrainProgress,
} from '../train/trainer.ts';
import { parseOptions, choiceOption, numberOption, UsageError } from './args.ts';
import { EXIT } from './exit.ts';
import { resumedData, resumedSettings, sha256 } from './resume.ts';
import { writeFiles } from './files.ts';

const VALUES = [
  'model',
  'tokenizer',
  'data',
  'out',
  'init',
  'variant',
  'rank',
  'alpha',
  'targets',
  'layers',
  'dropout',
  'steps',
  'lr',
  'batch',
  'seq-len',
  'grad-accum',
  'schedule',
  'warmup',
  'weight-decay',
  'adam-beta1',
  'adam-beta2',
  'adam-epsilon',
  'max-grad-norm',
  'eval-every',
  'val-fraction',
  'sample',
  'sample-tokens',
  'checkpoint-every',
  'seed',
  'export',
  'weights',
  'basis-seed',
  'basis-slice',
  'sorsa-gamma',
  'sparse',
  'density',
] as const;

/** `--NAME` says `--variant NAME`, for every variant but plain LoRA: `--dora`. */
export const VARIANT_FLAGS: readonly VariantName[] = VARIANT_NAMES.filter(
  (n) => n !== PLAIN_VARIANT,
);

/** The variant `--variant NAME` or `--NAME` chooses; plain LoRA when neither is given. */
export function variantOption(values: Map<string, string>, flags: Set<string>): VariantName {
  const named = values.has('variant')
    ? [choiceOption(values, 'variant', VARIANT_NAMES, PLAIN_VARIANT)]
    : [];
  const chosen = [...new Set([...named, ...VARIANT_FLAGS.filter((n) => flags.has(n))])];
  if (chosen.length > 1)
    throw new UsageError(`--variant: ${chosen.join(' and ')} given; an adapter has one variant`);
  return chosen.at(0) ?? PLAIN_VARIANT;
}

/** Where `--export residual` writes the residual base model, inside --out. */
const RESIDUAL_DIR = 'base-residual';

/** --targets: attention (default), all-linear, or module names; checked against the model. */
function targetsOption(raw: string | undefined): string[] {
  if (!raw) return [...TARGET_PRESETS.attention];
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** --basis-seed and --basis-slice: orthogonal adaptation's shared basis (only with that init). */
function basisOption(values: Map<string, string>, init: InitMethod): OrthogonalBasis | undefined {
  const given = ['basis-seed', 'basis-slice'].filter((k) => values.has(k));
  if (!takesBasis(init)) {
    if (given.length > 0)
      throw new UsageError(
        `--${given[0]} belongs to --init orthogonal (this run's init is ${init})`,
      );
    return undefined;
  }
  const basis = {
    seed: numberOption(values, 'basis-seed', DEFAULT_BASIS.seed),
    slice: numberOption(values, 'basis-slice', DEFAULT_BASIS.slice),
  };
  for (const [name, value] of Object.entries(basis))
    if (!(Number.isInteger(value) && value >= 0 && value < 2 ** 32))
      throw new UsageError(`--basis-${name} must be a whole number ≥ 0 (got ${value})`);
  return basis;
}

/** --sorsa-gamma: the orthonormal regulariser's weight γ (only with an init that trains with it). */
function orthonormalWeightOption(values: Map<string, string>, init: InitMethod): number {
  const fallback = DEFAULT_SETTINGS.orthonormalWeight;
  if (!initEntry(init).orthonormal) {
    if (values.has('sorsa-gamma'))
      throw new UsageError(`--sorsa-gamma belongs to --init sorsa (this run's init is ${init})`);
    return fallback;
  }
  const gamma = numberOption(values, 'sorsa-gamma', fallback);
  if (!(gamma >= 0 && Number.isFinite(gamma)))
    throw new UsageError(`--sorsa-gamma must be a number ≥ 0 (got ${gamma})`);
  return gamma;
}

/**
 * --init, or --sparse s2ft (the same as --init s2ft). SpIEL's unstructured sparse deltas are not
 * built: --sparse spiel is refused rather than run as something else.
 */
function initOption(values: Map<string, string>): InitMethod {
  const init = parseInit(values.get('init') ?? 'lora');
  const sparse = values.get('sparse');
  if (sparse === undefined) return init;
  if (sparse === 'spiel')
    throw new UsageError(
      '--sparse spiel: SpIEL (unstructured sparse deltas) is not in this version; --sparse s2ft trains structured sparse weights',
    );
  if (sparse !== 's2ft') throw new UsageError(`--sparse must be s2ft or spiel (got ${sparse})`);
  if (values.has('init') && init !== 's2ft')
    throw new UsageError(`--sparse s2ft is its own init; drop --init ${init}`);
  return 's2ft';
}

/** --density: the share of heads and channels S²FT trains (only with it). */
function densityOption(values: Map<string, string>, init: InitMethod): number | undefined {
  if (!values.has('density')) return undefined;
  if (init !== 's2ft')
    throw new UsageError(`--density belongs to --sparse s2ft (this run's init is ${init})`);
  const density = numberOption(values, 'density', DEFAULT_DENSITY);
  if (!(density > 0 && density <= 1))
    throw new UsageError(`--density must be in (0, 1] (got ${density})`);
  return density;
}

function configFrom(values: Map<string, string>, flags: Set<string>): TrainConfig {
  const rank = numberOption(values, 'rank', 8);
  const init = initOption(values);
  const lora: LoraSpec = {
    rank,
    alpha: numberOption(values, 'alpha', 2 * rank),
    rslora: flags.has('rslora'),
    // S²FT's modules are the attention output and the down projection: both unless told.
    targets: targetsOption(values.get('targets') ?? (init === 's2ft' ? 'all-linear' : undefined)),
    layers: values.get('layers')?.split(',').map(Number),
    dropout: numberOption(values, 'dropout', 0),
    init,
    variant: variantOption(values, flags),
    basis: basisOption(values, init),
    density: densityOption(values, init),
    dylora: flags.has('dylora') || undefined,
  };
  const steps = numberOption(values, 'steps', DEFAULT_SETTINGS.steps);
  return {
    lora,
    train: {
      ...DEFAULT_SETTINGS,
      steps,
      lr: numberOption(values, 'lr', DEFAULT_SETTINGS.lr),
      batchSize: numberOption(values, 'batch', DEFAULT_SETTINGS.batchSize),
      gradAccum: numberOption(values, 'grad-accum', 1),
      schedule: choiceOption(values, 'schedule', SCHEDULES, DEFAULT_SETTINGS.schedule),
      warmupSteps: numberOption(values, 'warmup', Math.min(DEFAULT_SETTINGS.warmupSteps, steps)),
      weightDecay: numberOption(values, 'weight-decay', 0),
      adamBeta1: numberOption(values, 'adam-beta1', DEFAULT_SETTINGS.adamBeta1),
      adamBeta2: numberOption(values, 'adam-beta2', DEFAULT_SETTINGS.adamBeta2),
      adamEpsilon: numberOption(values, 'adam-epsilon', DEFAULT_SETTINGS.adamEpsilon),
      maxGradNorm: numberOption(values, 'max-grad-norm', 1),
      evalEvery: numberOption(values, 'eval-every', DEFAULT_SETTINGS.evalEvery),
      samplePrompts: values.has('sample') ? [values.get('sample') ?? ''] : [],
      sampleTokens: numberOption(values, 'sample-tokens', DEFAULT_SETTINGS.sampleTokens),
      checkpointEvery: numberOption(values, 'checkpoint-every', DEFAULT_SETTINGS.checkpointEvery),
      seed: numberOption(values, 'seed', 0),
      recompute: flags.has('recompute'),
      loraPro: flags.has('lora-pro'),
      orthonormalWeight: orthonormalWeightOption(values, init),
    },
  };
}

function duration(seconds: number): string {
  const s = Math.round(seconds);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

function progressLine(p: TrainProgress): string | null {
  // Per-module initialisation only matters on a terminal, where it rewrites one line.
  if (p.phase === 'initialising') {
    const tty = process.stderr.isTTY;
    if (!p.message?.startsWith('initialised')) {
      if (tty) process.stderr.write(`\r${p.message ?? ''}\x1b[K`);
      return null;
    }
    return tty ? `\r${p.message}\x1b[K` : p.message;
  }
  const point = p.point;
  if (!point) return p.phase === 'paused' ? `paused at step ${p.step}` : null;
  const parts = [`step ${point.step}/${p.totalSteps}`];
  if (point.loss !== undefined) parts.push(`loss ${point.loss.toFixed(4)}`);
  if (point.valLoss !== undefined)
    parts.push(`val ${point.valLoss.toFixed(4)} (ppl ${Math.exp(point.valLoss).toFixed(2)})`);
  if (point.lr !== undefined) parts.push(`lr ${point.lr.toExponential(2)}`);
  if (point.gradNorm !== undefined) parts.push(`|g| ${point.gradNorm.toFixed(3)}`);
  if (point.orthonormality !== undefined)
    parts.push(`orthonormality error ${point.orthonormality.toExponential(2)}`);
  if (p.tokensPerSecond > 0) parts.push(`${p.tokensPerSecond.toFixed(0)} tok/s`);
  if (point.step > 0 && p.step < p.totalSteps) parts.push(`ETA ${duration(p.etaSeconds)}`);
  const samples = (p.samples ?? []).map((s) => `  sample: ${JSON.stringify(s.text)}`);
  return [parts.join('  '), ...samples].join('\n');
}

/**
 * `lora-studio train --model PATH --data FILE --out DIR [options]`: progress on stderr, the
 * adapter (PEFT files) and a checkpoint folder in DIR, a JSON summary on stdout. `--resume`
 * continues the run saved in DIR/checkpoint with its own settings (and --steps, to extend it).
 * Base-mutating inits export (`--export`) as a rank-2r plain LoRA for the original base (plain,
 * the default), SVD-recompressed to rank r with the energy lost reported (recompress), or as
 * trained beside the residual base model in DIR/base-residual (residual). `--variant dora` (or
 * `--dora`) trains DoRA magnitudes with the factors; `--lora-pro` corrects the factor gradients
 * by LoRA-Pro.
 */
export async function train(args: string[]): Promise<number> {
  const { values, flags } = parseOptions(args, {
    values: VALUES,
    flags: ['rslora', 'resume', 'force-data', 'recompute', 'lora-pro', 'dylora', ...VARIANT_FLAGS],
  });
  const exportMode = choiceOption(values, 'export', ['plain', 'recompress', 'residual'], 'plain');
  const modelPath = values.get('model');
  const dataPath = values.get('data');
  const out = values.get('out');
  if (!modelPath || !dataPath || !out)
    throw new UsageError('--model PATH, --data FILE and --out DIR are required');
  // Parsed first: a mistyped option is reported before anything is loaded.
  const asked = configFrom(values, flags);
  const checkpointDir = join(out, 'checkpoint');
  let resumeFrom: Checkpoint | undefined;
  if (flags.has('resume')) {
    const path = join(checkpointDir, CHECKPOINT_TENSORS);
    const tensors = await readFile(path).catch(() => {
      throw new UsageError(
        `--resume: no checkpoint in ${checkpointDir} (${CHECKPOINT_TENSORS} is missing)`,
      );
    });
    resumeFrom = checkpointFromFiles(tensors, () =>
      readFileSync(join(checkpointDir, CHECKPOINT_JSON)),
    );
  }
  const loaded = await loadModelFromPath(modelPath, values.get('tokenizer'));
  const dataBytes = await readFile(dataPath);
  const given = {
    config: asked,
    seqLen: numberOption(values, 'seq-len', Math.min(128, loaded.config.maxPositions)),
    validationFraction: numberOption(values, 'val-fraction', 0.1),
  };
  // A resumed run keeps its own settings (runs saved before the data settings were recorded
  // take them from the command line).
  const settings = resumeFrom
    ? resumedSettings(
        { ...given, ...resumeFrom.data, config: resumeFrom.config },
        given,
        new Set([...values.keys(), ...flags]),
      )
    : given;
  const { config } = settings;
  const identity: DataIdentity = {
    file: basename(dataPath),
    sha256: sha256(dataBytes),
    seqLen: settings.seqLen,
    validationFraction: settings.validationFraction,
  };
  const dataIdentity = resumeFrom
    ? resumedData(resumeFrom.data, identity, resumeFrom.step, flags.has('force-data'))
    : identity;
  if (dataIdentity.replaced?.length !== resumeFrom?.data?.replaced?.length)
    console.error(`resuming on other data (${dataIdentity.file}): recorded in the checkpoint`);
  const data = prepareDataset(decodeUtf8Text(dataBytes, dataPath), dataPath, loaded.tokenizer, {
    seqLen: settings.seqLen,
    validationFraction: settings.validationFraction,
    seed: config.train.seed,
  });
  const s = data.summary;
  console.error(
    `data: ${s.examples} examples, ${s.tokens} tokens (${s.trainedTokens} trained), ` +
      `${s.trainSequences} train / ${s.validationSequences} validation sequences`,
  );
  if (resumeFrom) console.error(`resuming at step ${resumeFrom.step} of ${config.train.steps}`);

  const gpu = await acquireGpu(nodeGpuEntry(), { shaders: nodeShaders });
  const model = createGpuModel(
    gpu,
    loaded.config,
    loaded.weights,
    choiceOption(values, 'weights', WEIGHT_PRECISIONS, 'file'),
  );
  const control = new TrainControl();
  const onSignal = () => {
    console.error('stopping after this step (checkpoint follows); Ctrl-C again to abort');
    process.off('SIGINT', onSignal);
    control.stop();
  };
  process.on('SIGINT', onSignal);
  try {
    const result = await runTraining({
      gpu,
      model,
      baseModel: loaded.name,
      data,
      config,
      tokenizer: loaded.tokenizer,
      control,
      resumeFrom,
      store: {
        save: (c) => writeFiles(checkpointDir, checkpointFiles({ ...c, data: dataIdentity })),
      },
      onProgress: (p) => {
        const line = progressLine(p);
        if (line) console.error(line);
      },
    });
    let lostEnergy: number | undefined;
    try {
      if (exportMode === 'residual' && result.adapter.mutatesBase) {
        // The adapter as trained, and the base it was trained against, as an HF folder.
        const { files, residuals } = await result.adapter.residualExport(
          join(out, RESIDUAL_DIR),
          loaded.config,
        );
        await writeFiles(out, files);
        const weights = new Map(loaded.weights);
        for (const [name, data] of residuals) {
          const shape = loaded.weights.get(name)?.shape ?? [];
          weights.set(name, { shape, data });
        }
        await writeFiles(join(out, RESIDUAL_DIR), hfFolderFiles(loaded.config, weights));
      } else {
        const rank = exportMode === 'recompress' ? config.lora.rank : undefined;
        const exported = await result.adapter.peftFiles(baseModelId(loaded), loaded.config, rank);
        lostEnergy = exported.lostEnergy;
        await writeFiles(out, exported.files);
      }
      await writeFiles(
        out,
        new Map([
          ['training_log.json', new TextEncoder().encode(JSON.stringify(result.history, null, 1))],
        ]),
      );
    } finally {
      result.adapter.dispose();
    }
    if (result.failure) console.error(`training stopped: ${result.failure}`);
    console.log(
      JSON.stringify({
        status: result.status,
        steps: result.steps,
        train_loss_first: result.trainLossFirst,
        train_loss_last: result.trainLossLast,
        val_loss_first: result.valLossFirst,
        val_loss_last: result.valLossLast,
        tokens_per_second: Math.round(result.tokensPerSecond),
        out,
        ...(lostEnergy === undefined ? {} : { recompress_lost_energy: lostEnergy }),
        ...(result.failure ? { failure: result.failure } : {}),
      }),
    );
    // Only Ctrl-C stops a run here.
    if (result.status === 'stopped') return EXIT.interrupted;
    return result.status === 'failed' ? EXIT.internal : EXIT.ok;
  } finally {
    process.off('SIGINT', onSignal);
    model.dispose();
    gpu.destroy();
  }
}
