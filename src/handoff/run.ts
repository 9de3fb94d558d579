// A training run as the hand-off to other engines sees it: the settings of its checkpoint, the
// modules it adapted, the base model's id, and its data split as the studio split it. Plain data
// and no file access, so the CLI and the Train panel (src/worker/run-handoff.ts) build it the
// same way.
import { FormatError } from '../model/errors.ts';
import type { Checkpoint } from '../train/trainer.ts';
import type { TrainConfig } from '../train/settings.ts';
import { exportedDataset, type ExportedDataset } from './dataset.ts';

export interface HandoffRun {
  /** What the configs load: a Hub repo id, or null where the run's base was a local file. */
  modelId: string | null;
  /** The base as the run names it (a file or folder name, or a Hub id). */
  baseModel: string;
  config: TrainConfig;
  seqLen: number;
  /** The adapted modules' paths inside a layer (`self_attn.q_proj`), as PEFT's target_modules. */
  modules: readonly string[];
  /** Optimiser steps the studio ran before the export. */
  stepsDone: number;
  /** The data file's name, and resumes that moved the run onto other data (from which step). */
  dataFile: string;
  dataReplacedAt: readonly number[];
  dataset: ExportedDataset;
}

/** `owner/name` as the Hub spells repo ids. */
export const HUB_ID = /^[\w.-]+\/[\w.-]+$/;

/** A module path's part after its layer index: `model.layers.3.self_attn.q_proj` → `self_attn.q_proj`. */
const LAYER_PART = /\.\d+\.(.+)$/;

/**
 * The run of a checkpoint, with the data file it was trained on (its text and name). `model`
 * overrides the base model's id; `peftBaseModel` is the run's adapter_config.json's
 * base_model_name_or_path, which names the Hub repo where the run's base came from one.
 * `splitSeed` is the seed the data was split with where it is not the run's (the studio's Data
 * panel has its own; the CLI splits with --seed).
 */
export function handoffRun(
  checkpoint: Checkpoint,
  data: { content: string; fileName: string },
  options: { model?: string; peftBaseModel?: string; splitSeed?: number } = {},
): HandoffRun {
  const identity = checkpoint.data;
  if (!identity)
    throw new FormatError(
      'checkpoint',
      'records no data settings (sequence length, validation fraction): it was saved by an older version of the studio',
    );
  const named = [checkpoint.baseModel, options.peftBaseModel].find((id) => id && HUB_ID.test(id));
  const modules = new Set<string>();
  for (const path of Object.keys(checkpoint.factors)) {
    const inLayer = LAYER_PART.exec(path);
    if (!inLayer)
      throw new FormatError('checkpoint', `holds factors of ${path}, which is no layer's module`);
    modules.add(inLayer[1]);
  }
  return {
    modelId: options.model ?? named ?? null,
    baseModel: checkpoint.baseModel,
    config: checkpoint.config,
    seqLen: identity.seqLen,
    modules: [...modules],
    stepsDone: checkpoint.step,
    dataFile: identity.file,
    dataReplacedAt: (identity.replaced ?? []).map((r) => r.step),
    dataset: exportedDataset(data.content, data.fileName, {
      validationFraction: identity.validationFraction,
      seed: options.splitSeed ?? checkpoint.config.train.seed,
    }),
  };
}

/** Whether the run has validation data to evaluate on. */
export const hasValidation = (run: HandoffRun): boolean => run.dataset.validation.length > 0;
