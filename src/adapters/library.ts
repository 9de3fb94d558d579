// The adapter library: every adapter the user made or brought, as the files that define it
// (PEFT's two files) plus what the studio shows about it. IndexedDB in the browser
// (src/worker/library-idb.ts), memory in tests.
import type { HubRef } from '../hub/repo-id.ts';
import type { OrthogonalBasis } from './config.ts';
import type { AdapterDetails } from './peft-read.ts';
import { withVariantName } from './variants.ts';

export interface LibraryEntry {
  id: string;
  name: string;
  baseModel: string;
  createdAt: number;
  /** How it came to be, in words: "trained: pissa, rank 8, 200 steps". */
  origin: string;
  files: Record<string, Uint8Array>;
  details?: AdapterDetails;
  /** What the user should know (another base model, non-finite values), found on import. */
  warnings?: string[];
  /** Where it is on the Hub: the repo it came from, or was pushed to, at that commit. */
  hub?: HubRef;
  /** The shared basis an orthogonally adapted adapter took its slice of ("next free slice"). */
  basis?: OrthogonalBasis;
  /** Trained with DyLoRA: every rank prefix works, so the Library offers to cut it. */
  dylora?: true;
}

/** The entry without its files' contents: what lists show. */
export type LibraryItem = Omit<LibraryEntry, 'files'> & {
  files: string[];
  bytes: number;
  /** Whether its modules fit the loaded model's shapes; null when no model is loaded. */
  fits?: boolean | null;
  /** What does not fit, in words, when it does not. */
  misfit?: string;
};

export interface AdapterLibrary {
  add(entry: LibraryEntry): Promise<void>;
  list(): Promise<LibraryItem[]>;
  get(id: string): Promise<LibraryEntry | undefined>;
  remove(id: string): Promise<void>;
}

/**
 * An entry as this version reads it: details saved before adapter variants had names said DoRA
 * by `dora: true` (the browser's library keeps entries across versions).
 */
export function upgradeEntry(entry: LibraryEntry): LibraryEntry {
  return entry.details ? { ...entry, details: withVariantName(entry.details) } : entry;
}

export function describeEntry(entry: LibraryEntry): LibraryItem {
  const { files, ...rest } = entry;
  return {
    ...rest,
    files: Object.keys(files),
    bytes: Object.values(files).reduce((n, f) => n + f.byteLength, 0),
  };
}

export function memoryLibrary(): AdapterLibrary {
  const entries = new Map<string, LibraryEntry>();
  return {
    add: (entry) => {
      entries.set(entry.id, entry);
      return Promise.resolve();
    },
    list: () =>
      Promise.resolve(
        [...entries.values()].sort((a, b) => b.createdAt - a.createdAt).map(describeEntry),
      ),
    get: (id) => Promise.resolve(entries.get(id)),
    remove: (id) => {
      entries.delete(id);
      return Promise.resolve();
    },
  };
}
