// Where a training run survives a page reload or a crash: its last checkpoint and the dataset it
// trains on (the same text, file name and options rebuild the same sequences). IndexedDB in the
// browser (src/worker/run-store-idb.ts), memory in tests.
import { withVariantName } from '../adapters/variants.ts';
import type { TrainConfig } from './settings.ts';
import type { Checkpoint } from './trainer.ts';

export interface DataOptions {
  seqLen: number;
  validationFraction: number;
  seed: number;
}

export interface DatasetSource {
  content: string;
  fileName: string;
  options: DataOptions;
}

export interface SavedRun {
  checkpoint: Checkpoint;
  dataset: DatasetSource;
  savedAt: number;
}

export interface RunStore {
  load(): Promise<SavedRun | undefined>;
  save(run: SavedRun): Promise<void>;
  clear(): Promise<void>;
}

export function memoryRunStore(): RunStore {
  let saved: SavedRun | undefined;
  return {
    load: () => Promise.resolve(saved && structuredClone(saved)),
    save: (run) => {
      saved = structuredClone(run);
      return Promise.resolve();
    },
    clear: () => {
      saved = undefined;
      return Promise.resolve();
    },
  };
}

/**
 * A run's settings as this version reads them: runs saved before adapter variants had names said
 * DoRA by `lora.dora: true`, and must still resume (CLI checkpoints, the browser's saved run).
 */
export function upgradeTrainConfig(config: TrainConfig): TrainConfig {
  return { ...config, lora: withVariantName(config.lora) };
}

/** A saved run with its settings upgraded (upgradeTrainConfig). */
export function upgradeSavedRun(run: SavedRun): SavedRun {
  const { checkpoint } = run;
  return { ...run, checkpoint: { ...checkpoint, config: upgradeTrainConfig(checkpoint.config) } };
}
