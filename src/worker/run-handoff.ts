// A training run handed to TRL/PEFT, Axolotl or LLaMA-Factory from the Train panel: the files
// `lora-studio export-run` writes (src/handoff), made from the run the browser keeps (its last
// checkpoint and the data text saved with it), as one zip.
import { zipSync } from 'fflate';
import type { LoraSpec } from '../adapters/config.ts';
import { DEFAULT_DENSITY } from '../adapters/s2ft.ts';
import { exportRunFiles, spellRun } from '../handoff/export.ts';
import { handoffRun, HUB_ID, type HandoffRun } from '../handoff/run.ts';
import { TARGET_NAMES, type TargetName } from '../handoff/targets.ts';
import type { DatasetSource, SavedRun } from '../train/run-store.ts';
import type { DataIdentity } from '../train/trainer.ts';
import type { RunHandoffInfo } from './api.ts';
import { fileSafeName } from '../adapters/model-card.ts';

/**
 * What a run (and the adapter it trains) is called: the data file's stem, the init and the rank
 * (S²FT's density: its modules' ranks follow from it, not from the rank).
 */
export function runName(
  fileName: string,
  lora: Pick<LoraSpec, 'init' | 'rank' | 'density'>,
): string {
  const size =
    lora.init === 's2ft' ? `density ${lora.density ?? DEFAULT_DENSITY}` : `r${lora.rank}`;
  return `${fileName.replace(/\.[^.]+$/, '')} · ${lora.init} ${size}`;
}

const hex = (bytes: Uint8Array) => [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');

/**
 * What the run trains on, as a checkpoint records it (the CLI's DataIdentity): the file's name,
 * the SHA-256 of its text as UTF-8, the sequence length the data was cut at, the validation share.
 */
export async function dataIdentity(source: DatasetSource, seqLen: number): Promise<DataIdentity> {
  const bytes = new TextEncoder().encode(source.content);
  const digest = await crypto.subtle.digest('SHA-256', bytes);
  return {
    file: source.fileName,
    sha256: hex(new Uint8Array(digest)),
    seqLen,
    validationFraction: source.options.validationFraction,
  };
}

/** A run the studio can hand off: its saved checkpoint and data, and the Hub id of its base. */
export interface HandoffSource {
  saved: SavedRun;
  /** What adapters trained on its base name as base_model_name_or_path, where it is known. */
  peftBaseModel?: string;
  /** The base's longest context, which capped the data's sequences, where it is known. */
  maxPositions?: number;
}

/**
 * The hand-off of a saved run. Runs saved before the studio recorded their data's identity take
 * it from the data options saved with them.
 */
async function runOf(source: HandoffSource, model?: string): Promise<HandoffRun> {
  const { checkpoint, dataset } = source.saved;
  const seqLen = Math.min(dataset.options.seqLen, source.maxPositions ?? Infinity);
  const data = checkpoint.data ?? (await dataIdentity(dataset, seqLen));
  return handoffRun({ ...checkpoint, data }, dataset, {
    model,
    peftBaseModel: source.peftBaseModel,
    splitSeed: dataset.options.seed,
  });
}

/** What the Train panel shows before an export: the run, its base's Hub id, each target's losses. */
export async function handoffInfo(source: HandoffSource): Promise<RunHandoffInfo> {
  const run = await runOf(source);
  const { checkpoint, dataset } = source.saved;
  return {
    name: runName(dataset.fileName, checkpoint.config.lora),
    baseModel: run.baseModel,
    modelId: run.modelId,
    step: checkpoint.step,
    totalSteps: checkpoint.config.train.steps,
    lost: Object.fromEntries(
      TARGET_NAMES.map((target) => [
        target,
        spellRun(run, target).settings.flatMap(({ setting, spelled }) =>
          spelled.lost ? [{ setting: setting.name, why: spelled.lost }] : [],
        ),
      ]),
    ) as RunHandoffInfo['lost'],
  };
}

/**
 * The run's files for `target` (exportRunFiles') in a zip, inside a folder named after the run and
 * the target, as the zip is. `model` names the base's Hub repo where the run's does not.
 */
export async function handoffZip(
  source: HandoffSource,
  target: TargetName,
  model?: string,
): Promise<{ name: string; bytes: Uint8Array }> {
  if (!TARGET_NAMES.includes(target))
    throw new Error(`There is no export for ${target}: choose ${TARGET_NAMES.join(', ')}.`);
  const id = model?.trim() || undefined;
  if (id !== undefined && !HUB_ID.test(id))
    throw new Error(`${id} is not a Hub model id: give it as owner/name, or leave it blank.`);
  const run = await runOf(source, id);
  const { checkpoint, dataset } = source.saved;
  const folder = `${fileSafeName(runName(dataset.fileName, checkpoint.config.lora))}-${target}`;
  const files = Object.fromEntries(
    [...exportRunFiles(run, target)].map(([path, bytes]) => [`${folder}/${path}`, bytes]),
  );
  return { name: `${folder}.zip`, bytes: zipSync(files, { level: 6 }) };
}
