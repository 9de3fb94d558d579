import { createStore, del, get, set, values } from 'idb-keyval';
import { describeEntry, type AdapterLibrary, type LibraryEntry } from '../adapters/library.ts';

// A store of its own, so listing the library never reads other records (runs, tuning).
const store = createStore('lora-studio-library', 'adapters');

/** The browser's adapter library in IndexedDB. */
export const idbLibrary: AdapterLibrary = {
  add: (entry) => set(entry.id, entry, store),
  list: async () =>
    (await values<LibraryEntry>(store))
      .sort((a, b) => b.createdAt - a.createdAt)
      .map(describeEntry),
  get: (id) => get<LibraryEntry>(id, store),
  remove: (id) => del(id, store),
};
