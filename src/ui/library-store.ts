import { create } from 'zustand';
import { persist } from 'zustand/middleware';
import { errorMessage } from '../errors.ts';
import type { AdapterComparison, LibraryItem } from '../worker/api.ts';
import { saveFile } from './download.ts';
import { readPicked, type PickedFile } from './dropped-files.ts';
import { studioApi } from './gpu-store.ts';
import { runJob, type Job } from './job.ts';
import { hubEndpoint } from './hub-endpoint.ts';
import { parseHubRef, refText } from '../hub/repo-id.ts';

/** Whether an adapter is applied to the loaded model, and with which weight. */
export interface AdapterUse {
  on: boolean;
  weight: number;
}

/** The weight slider's range: a negative weight subtracts the adapter. */
export const WEIGHT_MIN = -2;
export const WEIGHT_MAX = 2;
export const DEFAULT_USE: AdapterUse = { on: false, weight: 1 };

export type ImportView =
  | { state: 'idle' }
  | { state: 'importing'; names: string }
  | { state: 'done'; name: string }
  | {
      state: 'failed';
      message: string;
      /** What was refused (files, or a Hub ref as typed), kept for "Import anyway". */
      refused: PickedFile[] | string;
    };

interface LibraryStore {
  items: LibraryItem[];
  /** Whether the items have been listed since the page loaded (the composition waits for it). */
  listed: boolean;
  /** The last failed action, in words. */
  error: string | null;
  importState: ImportView;
  /** By item id; items not listed are off at weight 1. */
  use: Partial<Record<string, AdapterUse>>;
  /** Why an item was switched off: it could not be applied to the loaded model. */
  useErrors: Partial<Record<string, string>>;
  /** Items the user chose to apply although their numbers were refused (NaN, Inf, overflow). */
  forced: Partial<Record<string, true>>;
  /** Switches an item on again, applied despite the refusal of its numbers. */
  applyAnyway: (id: string) => Promise<void>;
  /** Why an item's GGUF file could not be made, shown beside its button. */
  ggufErrors: Partial<Record<string, string>>;
  /**
   * One adapter's inspection (per module ‖ΔW‖, singular values and effective ranks) by item id,
   * kept while the page lives: an adapter's contents never change.
   */
  inspections: Partial<Record<string, Job<AdapterComparison>>>;
  refresh: () => Promise<void>;
  /** Rejects with the worker's reason (a blank name), for the rename field to show. */
  rename: (id: string, name: string) => Promise<void>;
  /** A copy named "name (copy)". */
  duplicate: (id: string) => Promise<void>;
  /** The adapter as a llama.cpp GGUF LoRA for the loaded model. */
  downloadGguf: (id: string) => Promise<void>;
  /** Computes the item's inspection unless it is computed or computing (again after a failure). */
  inspect: (id: string) => Promise<void>;
  download: (id: string, fileName: string) => Promise<void>;
  /** The adapter as one zip named after it. */
  downloadZip: (id: string) => Promise<void>;
  /** Re-applies without the item when it is in use, then deletes it. */
  remove: (id: string) => Promise<void>;
  /** An adapter's files, a folder's or a .zip; `force` keeps one that does not fit the model. */
  importFiles: (files: PickedFile[], force?: boolean) => Promise<void>;
  /** Sends the refused files again with `force`. */
  importAnyway: () => Promise<void>;
  /** The whole library as one zip, downloaded. */
  exportLibrary: () => Promise<void>;
  /** Adds every adapter of a library zip (an export of this or another browser's library). */
  restoreLibrary: (file: File) => Promise<void>;
  /** Adds the adapter a Hub repo holds (`owner/name` or `owner/name@revision`). */
  importFromHub: (ref: string, force?: boolean) => Promise<void>;
  setUse: (id: string, on: boolean) => void;
  /** The composition becomes exactly these adapters at these weights (all others off). */
  useOnly: (uses: Readonly<Record<string, AdapterUse>>) => Promise<void>;
  /** While sliding, the composition is sent once the weight settles. */
  setWeight: (id: string, weight: number) => void;
  /** Sends the composition again (a new model starts without adapters). */
  reapply: () => Promise<void>;
  /** Resolves once the composition on screen is the one the worker generates with. */
  settled: () => Promise<void>;
  /**
   * Runs `task` alone in the queue that sends compositions to the worker (it may apply its own,
   * as the compose preview does), then sends the composition on screen again.
   */
  borrowComposition: <T>(task: () => Promise<T>) => Promise<T>;
}

/** A slider sends a value per pixel: wait for a pause before rebuilding the composition. */
const APPLY_SETTLE_MS = 150;

const without = <T>(record: Readonly<Partial<Record<string, T>>>, id: string) =>
  Object.fromEntries(Object.entries(record).filter(([key]) => key !== id));

const clampWeight = (w: number) => Math.min(WEIGHT_MAX, Math.max(WEIGHT_MIN, w));

/** The items in use, in library order, as applyAdapters takes them. */
export function activeAdapters(
  items: readonly LibraryItem[],
  use: Readonly<Partial<Record<string, AdapterUse>>>,
): { item: LibraryItem; weight: number }[] {
  return items.flatMap((item) => {
    const u = use[item.id];
    return u?.on ? [{ item, weight: u.weight }] : [];
  });
}

/**
 * Which of the active adapters a refusal is about: the one its message names first (the worker
 * starts it with "name:"), else the one just changed, else all of them.
 */
function culprits(text: string, active: readonly LibraryItem[], changed: string | null): string[] {
  const named = active.filter((item) => text.startsWith(`${item.name}:`)).map((item) => item.id);
  if (changed !== null && (named.length === 0 || named.includes(changed))) return [changed];
  return named.length > 0 ? named : active.map((item) => item.id);
}

export const useLibraryStore = create<LibraryStore>()(
  persist(
    (set, get) => {
      /** Runs an action against the worker, keeping its failure for the panel. */
      async function attempt(action: () => Promise<void>) {
        try {
          await action();
          set({ error: null });
        } catch (e) {
          set({ error: errorMessage(e) });
        }
      }

      // Compositions go to the worker one at a time, in order; `changed` is the item whose change
      // the next one carries (to blame it if the worker refuses).
      let settle: ReturnType<typeof setTimeout> | undefined;
      let applying: Promise<void> = Promise.resolve();
      let changed: string | null = null;

      async function apply(): Promise<void> {
        const studio = studioApi();
        if (!studio) return;
        const blame = changed;
        changed = null;
        const active = activeAdapters(get().items, get().use);
        try {
          const force = active.map(({ item }) => item.id).filter((id) => get().forced[id]);
          await studio.applyAdapters(
            active.map(({ item, weight }) => ({ id: item.id, weight })),
            { force },
          );
        } catch (e) {
          const text = errorMessage(e);
          const off = culprits(
            text,
            active.map((a) => a.item),
            blame,
          );
          const { use, useErrors } = get();
          set({
            use: {
              ...use,
              ...Object.fromEntries(
                off.map((id) => [id, { ...(use[id] ?? DEFAULT_USE), on: false }]),
              ),
            },
            useErrors: { ...useErrors, ...Object.fromEntries(off.map((id) => [id, text])) },
          });
          // The worker kept its previous composition: send the one now on screen.
          if (off.length > 0) await apply();
        }
      }

      function flush(): Promise<void> {
        clearTimeout(settle);
        settle = undefined;
        applying = applying.then(apply);
        return applying;
      }

      function changeUse(id: string, patch: Partial<AdapterUse>, delay: number) {
        const { use, useErrors } = get();
        const before = use[id] ?? DEFAULT_USE;
        const after = { ...before, ...patch };
        set({
          use: { ...use, [id]: after },
          useErrors: patch.on ? without(useErrors, id) : useErrors,
        });
        // A weight change of an adapter that is off changes nothing in the worker.
        if (!before.on && !after.on) return;
        changed = id;
        clearTimeout(settle);
        if (delay === 0) void flush();
        else settle = setTimeout(() => void flush(), delay);
      }

      async function importFiles(files: PickedFile[], force: boolean) {
        const studio = studioApi();
        if (!studio || files.length === 0 || get().importState.state === 'importing') return;
        set({ importState: { state: 'importing', names: files.map((f) => f.path).join(', ') } });
        try {
          const bytes = await readPicked(files);
          const { item } = await studio.importAdapter(bytes, force ? { force: true } : undefined);
          await get().refresh();
          set({ importState: { state: 'done', name: item.name } });
        } catch (e) {
          set({ importState: { state: 'failed', message: errorMessage(e), refused: files } });
        }
      }

      return {
        items: [],
        listed: false,
        error: null,
        importState: { state: 'idle' },
        use: {},
        useErrors: {},
        forced: {},
        applyAnyway(id) {
          set({ forced: { ...get().forced, [id]: true } });
          changeUse(id, { on: true }, 0);
          return applying;
        },
        ggufErrors: {},
        inspections: {},

        refresh: () =>
          attempt(async () => {
            const studio = studioApi();
            if (studio) set({ items: await studio.listAdapters(), listed: true });
          }),

        async rename(id, name) {
          await studioApi()?.renameAdapter(id, name);
          await get().refresh();
        },

        duplicate: (id) =>
          attempt(async () => {
            await studioApi()?.duplicateAdapter(id);
            await get().refresh();
          }),

        async downloadGguf(id) {
          const studio = studioApi();
          if (!studio) return;
          try {
            const file = await studio.adapterGguf(id);
            saveFile(file.name, file.bytes);
            set((s) => ({ ggufErrors: without(s.ggufErrors, id) }));
          } catch (e) {
            set((s) => ({ ggufErrors: { ...s.ggufErrors, [id]: errorMessage(e) } }));
          }
        },

        async inspect(id) {
          const studio = studioApi();
          const current = get().inspections[id]?.state;
          if (!studio || current === 'running' || current === 'done') return;
          const show = (job: Job<AdapterComparison>) => {
            set((s) => ({ inspections: { ...s.inspections, [id]: job } }));
          };
          await runJob(show, () => studio.compare([id]));
        },

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

        downloadZip: (id) =>
          attempt(async () => {
            const zip = await studioApi()?.adapterZip(id);
            if (zip) saveFile(zip.name, zip.bytes, 'application/zip');
          }),

        remove: (id) =>
          attempt(async () => {
            const { use, useErrors, ggufErrors, inspections } = get();
            set({
              use: without(use, id),
              useErrors: without(useErrors, id),
              ggufErrors: without(ggufErrors, id),
              inspections: without(inspections, id),
            });
            if (use[id]?.on) await flush();
            await studioApi()?.removeAdapter(id);
            await get().refresh();
          }),

        importFiles: (files, force = false) => importFiles(files, force),

        async importAnyway() {
          const view = get().importState;
          if (view.state !== 'failed') return;
          if (typeof view.refused === 'string') await get().importFromHub(view.refused, true);
          else await importFiles(view.refused, true);
        },

        exportLibrary: () =>
          attempt(async () => {
            const zip = await studioApi()?.libraryZip();
            if (zip) saveFile(zip.name, zip.bytes, 'application/zip');
          }),

        async restoreLibrary(file) {
          const studio = studioApi();
          if (!studio || get().importState.state === 'importing') return;
          set({ importState: { state: 'importing', names: file.name } });
          try {
            const bytes = new Uint8Array(await file.arrayBuffer());
            const { names } = await studio.restoreLibrary(bytes, file.name);
            await get().refresh();
            const count = `${names.length} adapter${names.length === 1 ? '' : 's'}`;
            set({ importState: { state: 'done', name: `${count} from ${file.name}` } });
          } catch (e) {
            set({ importState: { state: 'failed', message: errorMessage(e), refused: [] } });
          }
        },

        async importFromHub(text, force = false) {
          const studio = studioApi();
          if (!studio || get().importState.state === 'importing') return;
          const ref = parseHubRef(text);
          if (!ref) {
            set({
              importState: {
                state: 'failed',
                message: `"${text.trim()}" is not a Hub repo id: give owner/name, or owner/name@revision`,
                refused: text,
              },
            });
            return;
          }
          set({ importState: { state: 'importing', names: refText(ref) } });
          try {
            const { item } = await studio.importAdapterFromHub(ref, {
              baseUrl: hubEndpoint(),
              force,
            });
            await get().refresh();
            set({ importState: { state: 'done', name: item.name } });
          } catch (e) {
            set({ importState: { state: 'failed', message: errorMessage(e), refused: text } });
          }
        },

        setUse(id, on) {
          changeUse(id, { on }, 0);
        },

        useOnly(uses) {
          const off = Object.fromEntries(
            Object.entries(get().use).map(([id, u]) => [id, { ...(u ?? DEFAULT_USE), on: false }]),
          );
          const ids = Object.keys(uses);
          set({ use: { ...off, ...uses }, useErrors: {}, forced: {} });
          changed = ids.length === 1 ? ids[0] : null;
          return flush();
        },

        setWeight(id, weight) {
          if (Number.isFinite(weight))
            changeUse(id, { weight: clampWeight(weight) }, APPLY_SETTLE_MS);
        },

        reapply() {
          if (activeAdapters(get().items, get().use).length === 0) return applying;
          changed = null;
          return flush();
        },

        settled() {
          return settle === undefined ? applying : flush();
        },

        borrowComposition(task) {
          const result = applying.then(task);
          applying = result.then(apply, apply);
          return result;
        },
      };
    },
    {
      // The composition (which adapters are on, at which weights) survives a reload; it is
      // applied again once the model and the library are there.
      name: 'lora-studio-composition',
      version: 1,
      partialize: ({ use }) => ({ use }),
    },
  ),
);
