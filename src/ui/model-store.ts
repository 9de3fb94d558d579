import { proxy } from 'comlink';
import { create } from 'zustand';
import { errorMessage } from '../errors.ts';
import type {
  DownloadProgress,
  GenerateOptions,
  GenerationResult,
  ModelInfo,
  ModelPlan,
  WeightPrecision,
} from '../worker/api.ts';
import { hubEndpoint } from './hub-endpoint.ts';
import { studioApi } from './gpu-store.ts';
import { useLibraryStore } from './library-store.ts';
import { withUpdates } from './worker-updates.ts';

/**
 * The loaded model, if any, and the last load's progress or error. A failed load leaves the
 * previous model in place (the worker swaps models only on success).
 */
export interface ModelView {
  info: ModelInfo | null;
  loading: boolean;
  error: string | null;
  /** What the last model read (loaded or refused) takes at each precision. */
  plan: ModelPlan | null;
}

export type GenerationView =
  | { state: 'idle' }
  | { state: 'running'; text: string }
  | { state: 'done'; result: GenerationResult }
  | { state: 'failed'; message: string };

interface ModelStore {
  model: ModelView;
  generation: GenerationView;
  /** How the next model's weights are kept on the GPU (`file`: as stored). */
  precision: WeightPrecision;
  setPrecision: (precision: WeightPrecision) => void;
  /** Loads the last model (loaded or refused) again at another precision. */
  reload: (precision: WeightPrecision) => Promise<void>;
  loadBuiltin: () => Promise<void>;
  /** A model folder or files the user picked or dropped; `name` that of a dropped folder. */
  loadFiles: (files: File[], name?: string) => Promise<void>;
  /** A model from the Hugging Face Hub by repo id. */
  loadFromHub: (repo: string) => Promise<void>;
  /** The current download, while one runs. */
  download: DownloadProgress | null;
  generate: (prompt: string, options: GenerateOptions) => Promise<void>;
}

export const useModelStore = create<ModelStore>((set, get) => {
  /**
   * Runs a load, hearing its plan (what the weights take) before they are uploaded, so a model
   * the device refuses still shows its memory table.
   */
  async function load(
    loader: (onPlan: (plan: ModelPlan) => void) => Promise<ModelInfo>,
  ): Promise<void> {
    set({ model: { ...get().model, loading: true, error: null } });
    let listening = true;
    const onPlan = proxy((plan: ModelPlan) => {
      if (listening) set({ model: { ...get().model, plan } });
    });
    try {
      const info = await loader(onPlan);
      set({
        model: { info, loading: false, error: null, plan: info.plan },
        generation: { state: 'idle' },
      });
    } catch (e) {
      set({ model: { ...get().model, loading: false, error: errorMessage(e) } });
    } finally {
      listening = false;
    }
  }

  return {
    model: { info: null, loading: false, error: null, plan: null },
    download: null,
    generation: { state: 'idle' },
    precision: 'file',

    setPrecision(precision) {
      set({ precision });
    },

    async reload(precision) {
      const studio = studioApi();
      if (!studio || get().model.loading) return;
      set({ precision });
      await load((onPlan) => studio.reloadModel(precision, onPlan));
    },

    async loadBuiltin() {
      const studio = studioApi();
      if (!studio || get().model.loading) return;
      await load((onPlan) => studio.loadBuiltinModel(get().precision, onPlan));
    },

    async loadFiles(files, folder) {
      const studio = studioApi();
      if (!studio || files.length === 0) return;
      // A picked folder's files carry "folder/file" paths; its name is the model's.
      const first = files[0].webkitRelativePath;
      const name = folder ?? (first ? first.split('/')[0] : files.map((f) => f.name).join(', '));
      await load((onPlan) => studio.loadModelFiles(files, name, get().precision, onPlan));
    },

    async loadFromHub(repo) {
      const studio = studioApi();
      if (!studio || get().model.loading) return;
      const baseUrl = hubEndpoint();
      const onProgress = (download: DownloadProgress) => {
        set({ download });
      };
      await load((onPlan) =>
        withUpdates(onProgress, (cb) =>
          studio.loadModelFromHub(repo.trim(), baseUrl, cb, get().precision, onPlan),
        ),
      );
      set({ download: null });
    },

    async generate(prompt, options) {
      const studio = studioApi();
      if (!studio || get().generation.state === 'running') return;
      set({ generation: { state: 'running', text: prompt } });
      try {
        // The adapters on screen, weights settled, are the ones the text is generated with.
        await useLibraryStore.getState().settled();
        const onText = (text: string) => {
          set({ generation: { state: 'running', text } });
        };
        set({
          generation: {
            state: 'done',
            result: await withUpdates(onText, (cb) => studio.generate(prompt, options, cb)),
          },
        });
      } catch (e) {
        set({ generation: { state: 'failed', message: errorMessage(e) } });
      }
    },
  };
});
