// Where the library lives: IndexedDB, which a browser may clear when the disk runs low unless the
// page is granted persistent storage. The studio asks for it once the library holds an adapter
// and shows how much the origin uses of what it may.
import { create } from 'zustand';

interface StorageStore {
  /** Whether the browser keeps this origin's data until the user clears it; null: unknown. */
  persisted: boolean | null;
  usage: number | null;
  quota: number | null;
  /** Reads the state (no prompt). */
  check: () => Promise<void>;
  /** Asks for persistent storage (browsers grant or refuse it without asking the user, mostly). */
  keep: () => Promise<void>;
}

/** Where the page has no StorageManager (an insecure context, an old browser), nothing is known. */
const storage = (): StorageManager | undefined =>
  typeof navigator === 'undefined' ? undefined : navigator.storage;

export const useStorageStore = create<StorageStore>((set, get) => ({
  persisted: null,
  usage: null,
  quota: null,

  async check() {
    const manager = storage();
    if (!manager) return;
    const [persisted, estimate] = await Promise.all([
      manager.persisted().catch(() => null),
      manager.estimate().catch(() => ({ usage: undefined, quota: undefined })),
    ]);
    set({ persisted, usage: estimate.usage ?? null, quota: estimate.quota ?? null });
  },

  async keep() {
    const manager = storage();
    if (!manager || get().persisted) return;
    await manager.persist().catch(() => false);
    await get().check();
  },
}));
