import { del, get, set } from 'idb-keyval';
import { upgradeSavedRun, type RunStore, type SavedRun } from '../train/run-store.ts';

/** The browser's run store: one IndexedDB record holding the latest checkpoint and its data. */
export const idbRunStore: RunStore = {
  // A run saved by an older version resumes with its settings upgraded.
  load: async () => {
    const run = await get<SavedRun>('run:latest');
    return run && upgradeSavedRun(run);
  },
  save: (run) => set('run:latest', run),
  clear: () => del('run:latest'),
};
