import { proxy } from 'comlink';
import { create } from 'zustand';
import type { GenerateOptions, GenerationResult, ModelInfo } from '../worker/api.ts';
import { studioApi } from './gpu-store.ts';

export type ModelView =
  | { state: 'none' }
  | { state: 'loading' }
  | { state: 'ready'; info: ModelInfo }
  | { state: 'failed'; message: string };

export type GenerationView =
  | { state: 'idle' }
  | { state: 'running'; text: string }
  | { state: 'done'; result: GenerationResult }
  | { state: 'failed'; message: string };

interface ModelStore {
  model: ModelView;
  generation: GenerationView;
  loadBuiltin: () => Promise<void>;
  /** A model folder or files the user picked or dropped. */
  loadFiles: (files: File[]) => Promise<void>;
  generate: (prompt: string, options: GenerateOptions) => Promise<void>;
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

export const useModelStore = create<ModelStore>((set, get) => ({
  model: { state: 'none' },
  generation: { state: 'idle' },

  async loadBuiltin() {
    const studio = studioApi();
    if (!studio || get().model.state === 'loading') return;
    set({ model: { state: 'loading' } });
    try {
      set({ model: { state: 'ready', info: await studio.loadBuiltinModel() } });
    } catch (e) {
      set({ model: { state: 'failed', message: message(e) } });
    }
  },

  async loadFiles(files) {
    const studio = studioApi();
    if (!studio || files.length === 0) return;
    // A dropped folder's files carry "folder/file" paths; its name is the model's.
    const first = files[0].webkitRelativePath;
    const name = first ? first.split('/')[0] : files.map((f) => f.name).join(', ');
    set({ model: { state: 'loading' }, generation: { state: 'idle' } });
    try {
      set({ model: { state: 'ready', info: await studio.loadModelFiles(files, name) } });
    } catch (e) {
      set({ model: { state: 'failed', message: message(e) } });
    }
  },

  async generate(prompt, options) {
    const studio = studioApi();
    if (!studio || get().generation.state === 'running') return;
    set({ generation: { state: 'running', text: prompt } });
    try {
      const onText = (text: string) => {
        set({ generation: { state: 'running', text } });
      };
      set({
        generation: {
          state: 'done',
          result: await studio.generate(prompt, options, proxy(onText)),
        },
      });
    } catch (e) {
      set({ generation: { state: 'failed', message: message(e) } });
    }
  },
}));
