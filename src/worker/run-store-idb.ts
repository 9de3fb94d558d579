import { del, get, set } from 'idb-keyval';
import type { RunStore, SavedRun } from '../train/run-store.ts';

/** The browser's run store: one IndexedDB record holding the latest checkpoint and its data. */
export const idbRunStore: RunStore = {
  load: () => get<SavedRun>('run:latest'),
  save: (run) => set('run:latest', run),
  clear: () => del('run:latest'),
};
