import { get, set } from 'idb-keyval';
import type { TuningEntries, TuningStore } from '../gpu/tuning.ts';

/** The browser's tuning store: IndexedDB, one record per device. */
export const idbTuningStore: TuningStore = {
  load: (device) => get<TuningEntries>(`tuning:${device}`),
  save: (device, entries) => set(`tuning:${device}`, entries),
};
