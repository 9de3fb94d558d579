import { createStore, del, get as idbGet, set as idbSet } from 'idb-keyval';
import { create } from 'zustand';
import { createJSONStorage, persist } from 'zustand/middleware';
import { errorMessage } from '../errors.ts';
import type { DataOptions, DatasetSummary } from '../worker/api.ts';
import { studioApi } from './gpu-store.ts';
import { useModelStore } from './model-store.ts';
import { withUpdates } from './worker-updates.ts';

/** The corpus shipped in public/datasets (see its README): the built-in model learns it fast. */
export const EXAMPLE_DATASET = 'zimmy-stories.txt';

export const DEFAULT_DATA_OPTIONS: DataOptions = { seqLen: 128, validationFraction: 0.1, seed: 0 };

interface DataStore {
  /** The file's text, kept so that new options (or a new model) can prepare it again. */
  source: { content: string; fileName: string } | null;
  options: DataOptions;
  /** What the worker made of the source with these options, for the loaded model. */
  summary: DatasetSummary | null;
  preparing: boolean;
  /** How far the worker got with the latest preparation, and the time left at its pace so far. */
  progress: { done: number; total: number; secondsLeft: number | null } | null;
  error: string | null;
  loadFile: (file: File) => Promise<void>;
  loadExample: () => Promise<void>;
  /** Changes options; a loaded file is prepared again once the typing settles. */
  setOptions: (patch: Partial<DataOptions>) => void;
  /** Parses, tokenizes, splits and packs the source in the worker. */
  prepare: () => Promise<void>;
}

/**
 * The file as UTF-8 text; other encodings are refused with a message rather than read with
 * replacement characters the model would then learn.
 */
export function utf8Text(bytes: ArrayBuffer, fileName: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new Error(
      `${fileName} is not UTF-8 text: save it as UTF-8 (most editors offer it under "Save as") and choose it again.`,
    );
  }
}

/** Typing "256" passes through "2" and "25": wait for the last keystroke before re-tokenizing. */
const OPTIONS_SETTLE_MS = 300;

/**
 * The chosen file and options survive a reload, in IndexedDB (a dataset can be megabytes, more
 * than localStorage holds): the data is prepared again for the model once it is loaded, at a
 * megabyte a second or more, rather than lost.
 */
const datasetStore = createStore('lora-studio-dataset', 'dataset');
const idbStorage = createJSONStorage(() => ({
  getItem: async (name: string) => (await idbGet<string>(name, datasetStore)) ?? null,
  setItem: (name: string, value: string) => idbSet(name, value, datasetStore),
  removeItem: (name: string) => del(name, datasetStore),
}));

export const useDataStore = create<DataStore>()(
  persist(
    (set, get) => {
      // Only the latest request may write its answer (an earlier one can finish later).
      let request = 0;
      let settle: ReturnType<typeof setTimeout> | undefined;

      async function load(read: () => Promise<{ content: string; fileName: string }>) {
        const ticket = ++request;
        set({ preparing: true, error: null });
        try {
          const source = await read();
          if (ticket !== request) return;
          set({ source });
          await get().prepare();
        } catch (e) {
          if (ticket === request) set({ preparing: false, error: errorMessage(e), summary: null });
        }
      }

      return {
        source: null,
        options: DEFAULT_DATA_OPTIONS,
        summary: null,
        preparing: false,
        progress: null,
        error: null,

        loadFile: (file) =>
          load(async () => ({
            content: utf8Text(await file.arrayBuffer(), file.name),
            fileName: file.name,
          })),

        loadExample: () =>
          load(async () => {
            const response = await fetch(`${import.meta.env.BASE_URL}datasets/${EXAMPLE_DATASET}`);
            if (!response.ok)
              throw new Error(`Could not load the example dataset: HTTP ${response.status}`);
            return { content: await response.text(), fileName: EXAMPLE_DATASET };
          }),

        setOptions(patch) {
          set({ options: { ...get().options, ...patch } });
          clearTimeout(settle);
          if (!get().source) return;
          // The summary on screen no longer matches the options, nor will one in flight.
          request++;
          set({ preparing: true });
          settle = setTimeout(() => void get().prepare(), OPTIONS_SETTLE_MS);
        },

        async prepare() {
          const studio = studioApi();
          const { source, options } = get();
          if (!studio || !source) return;
          clearTimeout(settle);
          const ticket = ++request;
          const startedAt = Date.now();
          set({ preparing: true, error: null, progress: null });
          const onProgress = (done: number, total: number) => {
            if (ticket !== request) return;
            const elapsed = (Date.now() - startedAt) / 1000;
            const secondsLeft = done > 0 && done < total ? (elapsed * (total - done)) / done : null;
            set({ progress: { done, total, secondsLeft } });
          };
          try {
            const summary = await withUpdates(onProgress, (cb) =>
              studio.prepareData(source.content, source.fileName, options, cb),
            );
            if (ticket === request) set({ summary, preparing: false, progress: null });
          } catch (e) {
            if (ticket === request)
              set({ summary: null, preparing: false, progress: null, error: errorMessage(e) });
          }
        },
      };
    },
    {
      name: 'lora-studio-dataset',
      version: 1,
      storage: idbStorage,
      partialize: ({ source, options }) => ({ source, options }),
      // Restored after the model loaded: prepare it now (before, the model's load prepares it).
      onRehydrateStorage: () => (state) => {
        if (state?.source && useModelStore.getState().model.info) void state.prepare();
      },
    },
  ),
);
