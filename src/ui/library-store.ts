import { create } from 'zustand';
import type { LibraryItem } from '../worker/api.ts';
import { saveFile } from './download.ts';
import { studioApi } from './gpu-store.ts';

interface LibraryStore {
  items: LibraryItem[];
  /** The last failed action, in words. */
  error: string | null;
  refresh: () => Promise<void>;
  download: (id: string, fileName: string) => Promise<void>;
  remove: (id: string) => Promise<void>;
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

export const useLibraryStore = create<LibraryStore>((set, get) => {
  /** Runs an action against the worker, keeping its failure for the panel. */
  async function attempt(action: () => Promise<void>) {
    try {
      await action();
      set({ error: null });
    } catch (e) {
      set({ error: message(e) });
    }
  }

  return {
    items: [],
    error: null,

    refresh: () =>
      attempt(async () => {
        const studio = studioApi();
        if (studio) set({ items: await studio.listAdapters() });
      }),

    download: (id, fileName) =>
      attempt(async () => {
        const studio = studioApi();
        if (!studio) return;
        const file = (await studio.adapterFiles(id)).find((f) => f.name === fileName);
        if (!file) throw new Error(`The adapter has no file ${fileName}.`);
        saveFile(
          file.name,
          file.bytes,
          fileName.endsWith('.json') ? 'application/json' : undefined,
        );
      }),

    remove: (id) =>
      attempt(async () => {
        await studioApi()?.removeAdapter(id);
        await get().refresh();
      }),
  };
});
