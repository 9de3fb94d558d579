// Where a training run survives a page reload or a crash: its last checkpoint and the dataset it
// trains on (the same text, file name and options rebuild the same sequences). IndexedDB in the
// browser (src/worker/run-store-idb.ts), memory in tests.
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
