import { createStore, del, get, set, values } from 'idb-keyval';
import {
  describeEntry,
  upgradeEntry,
  type AdapterLibrary,
  type LibraryEntry,
} from '../adapters/library.ts';

// A store of its own, so listing the library never reads other records (runs, tuning).
const store = createStore('lora-studio-library', 'adapters');

/** A full disk or quota explained; IndexedDB's transaction fails whole, so nothing stored is lost. */
function explainStorage(e: unknown): Error {
  if (e instanceof DOMException && e.name === 'QuotaExceededError')
    return new Error(
      "The browser's storage for this site is full: delete adapters you no longer need (or free disk space) and try again. Nothing already in the library was lost.",
    );
  return e instanceof Error ? e : new Error(String(e));
}

/** The browser's adapter library in IndexedDB. */
export const idbLibrary: AdapterLibrary = {
  add: (entry) =>
    set(entry.id, entry, store).catch((e: unknown) => {
      throw explainStorage(e);
    }),
  // Entries stored by an older version are read upgraded.
  list: async () =>
    (await values<LibraryEntry>(store))
      .sort((a, b) => b.createdAt - a.createdAt)
      .map((entry) => describeEntry(upgradeEntry(entry))),
  get: async (id) => {
    const entry = await get<LibraryEntry>(id, store);
    return entry && upgradeEntry(entry);
  },
  remove: (id) => del(id, store),
};
