// `train --resume` continues the same run: every setting that shapes it comes from the checkpoint.
// A flag given again must agree with it; the few that only extend or observe the run (--steps,
// the evaluation and checkpoint cadence, sample prompts) are applied and recorded in the
// checkpoint's settings. The data must be the same bytes, unless --force-data says otherwise
// (recorded in the checkpoint's data history).
import { createHash } from 'node:crypto';
import type { DataIdentity, TrainConfig } from '../train/trainer.ts';
import { UsageError } from './args.ts';

type Settings = { config: TrainConfig; seqLen: number; validationFraction: number };

/** Options that shape the run, and where each lands in the settings. */
const SHAPING: Record<string, (s: Settings) => unknown> = {
  init: (s) => s.config.lora.init,
  sparse: (s) => s.config.lora.init,
  variant: (s) => s.config.lora.variant ?? 'lora',
  'basis-seed': (s) => s.config.lora.basis?.seed,
  'basis-slice': (s) => s.config.lora.basis?.slice,
  density: (s) => s.config.lora.density,
  dylora: (s) => s.config.lora.dylora === true,
  rank: (s) => s.config.lora.rank,
  alpha: (s) => s.config.lora.alpha,
  targets: (s) => s.config.lora.targets,
  layers: (s) => s.config.lora.layers,
  dropout: (s) => s.config.lora.dropout,
  rslora: (s) => s.config.lora.rslora,
  lr: (s) => s.config.train.lr,
  batch: (s) => s.config.train.batchSize,
  'grad-accum': (s) => s.config.train.gradAccum,
  schedule: (s) => s.config.train.schedule,
  warmup: (s) => s.config.train.warmupSteps,
  'weight-decay': (s) => s.config.train.weightDecay,
  'adam-beta1': (s) => s.config.train.adamBeta1,
  'adam-beta2': (s) => s.config.train.adamBeta2,
  'adam-epsilon': (s) => s.config.train.adamEpsilon,
  'max-grad-norm': (s) => s.config.train.maxGradNorm,
  seed: (s) => s.config.train.seed,
  recompute: (s) => s.config.train.recompute,
  'lora-pro': (s) => s.config.train.loraPro,
  'sorsa-gamma': (s) => s.config.train.orthonormalWeight,
  'seq-len': (s) => s.seqLen,
  'val-fraction': (s) => s.validationFraction,
};

/** Options a resume may change: they extend or observe the run, not what it computes. */
const ADJUSTABLE: Record<string, (from: TrainConfig['train'], to: TrainConfig['train']) => void> = {
  steps: (from, to) => (to.steps = from.steps),
  'eval-every': (from, to) => (to.evalEvery = from.evalEvery),
  sample: (from, to) => (to.samplePrompts = from.samplePrompts),
  'sample-tokens': (from, to) => (to.sampleTokens = from.sampleTokens),
  'checkpoint-every': (from, to) => (to.checkpointEvery = from.checkpointEvery),
};

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * The settings of a resumed run: the checkpoint's, with the adjustable options given applied.
 * `given` are the settings the command line asks for (defaults filled in), `named` the options
 * actually written there. Refuses, naming each, options that contradict the checkpoint.
 */
export function resumedSettings(
  saved: Settings,
  given: Settings,
  named: ReadonlySet<string>,
): Settings {
  const contradictions = [...named]
    .filter((option) => Object.hasOwn(SHAPING, option))
    .filter((option) => {
      const [was, now] = [SHAPING[option](saved), SHAPING[option](given)];
      return JSON.stringify(was) !== JSON.stringify(now);
    })
    .map(
      (option) =>
        `--${option} ${JSON.stringify(SHAPING[option](given))} (the run has ${JSON.stringify(SHAPING[option](saved))})`,
    );
  if (contradictions.length > 0)
    throw new UsageError(
      `--resume continues the run with its own settings; these contradict it: ${contradictions.join(', ')}. Only ${Object.keys(
        ADJUSTABLE,
      )
        .map((o) => `--${o}`)
        .join(', ')} may change`,
    );
  const train = { ...saved.config.train };
  for (const option of named)
    if (Object.hasOwn(ADJUSTABLE, option)) ADJUSTABLE[option](given.config.train, train);
  return { ...saved, config: { ...saved.config, train } };
}

/**
 * The data identity to record for this run: the checkpoint's when resuming on the same bytes;
 * another file's only when forced, with the change recorded.
 */
export function resumedData(
  saved: DataIdentity | undefined,
  now: DataIdentity,
  step: number,
  force: boolean,
): DataIdentity {
  if (!saved || saved.sha256 === now.sha256) return { ...now, replaced: saved?.replaced };
  if (!force)
    throw new UsageError(
      `--resume: ${now.file} is not the data the run was trained on (${saved.file}, sha256 ${saved.sha256.slice(0, 12)}…); give --force-data to continue on it anyway`,
    );
  return { ...now, replaced: [...(saved.replaced ?? []), { step, sha256: now.sha256 }] };
}
