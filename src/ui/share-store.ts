// The board shared as a link, and a link opened: making one names every board adapter by its Hub
// repo and commit (an adapter the studio made is pushed first); opening one downloads those
// adapters into the library (or finds them there), puts them on the board with their switches
// and weights, and sets the merge card, the layer grid, LiNeS and the preview prompt as the link
// says. The link lives in the page URL's fragment (composition-link.ts).
import { create } from 'zustand';
import { errorMessage } from '../errors.ts';
import type { LayerGrid } from '../worker/api.ts';
import {
  boardItems,
  fittedGrid,
  gridModules,
  mergeOptions,
  NEUTRAL_LINES,
  useComposeStore,
} from './compose-store.ts';
import { compositionLink, sharedComposition, type SharedComposition } from './composition-link.ts';
import { studioApi } from './gpu-store.ts';
import { hubEndpoint } from './hub-endpoint.ts';
import { failedJob, IDLE_JOB, runJob, type Job } from './job.ts';
import { DEFAULT_USE, useLibraryStore } from './library-store.ts';
import { settingsFromOptions } from './merge-settings.ts';
import { useModelStore } from './model-store.ts';

/** What opening a link did. */
export interface OpenedLink {
  /** The board's adapters by name, in order. */
  names: string[];
  /** How many were in the library already (the same repo at the same commit). */
  reused: number;
  /** The model the link was composed on, where it is not the loaded one. */
  otherBase: string | null;
  /** What of the link could not be carried over to the loaded model, in words. */
  notes: string[];
}

export type MadeLink =
  { state: 'made'; url: string; adapters: number } | { state: 'refused'; why: string };

interface ShareStore {
  link: MadeLink | null;
  opened: Job<OpenedLink>;
  /** The link that opens the board as it is now, or why there is none. */
  makeLink: () => void;
  /** Opens the composition a URL fragment holds (nothing when it holds none). */
  open: (hash: string) => Promise<void>;
  dismissOpened: () => void;
}

/** The link's grid in the loaded model's column order, or why it cannot be used. */
function gridForModel(layerGrid: LayerGrid | undefined, layers: number): number[][] | string {
  if (!layerGrid) return [];
  const modules = gridModules();
  const columns = modules.map((m) => layerGrid.modules.indexOf(m));
  if (
    layerGrid.weights.length === layers &&
    layerGrid.modules.length === modules.length &&
    columns.every((c) => c >= 0)
  )
    return layerGrid.weights.map((row) => columns.map((c) => row[c]));
  return `Its layer grid (${layerGrid.weights.length} layers × ${layerGrid.modules.join(', ')}) does not fit the loaded model (${layers} layers × ${modules.join(', ')}): the grid is left uniform.`;
}

/** Why the board cannot be shared as a link, or null. */
function linkRefusal(names: { name: string; hub?: unknown }[]): string | null {
  if (names.length === 0) return 'Put adapters on the board first.';
  const missing = names.filter((item) => !item.hub).map((item) => item.name);
  if (missing.length === 0) return null;
  return `A link names each adapter by its Hub repo, and ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not on the Hub: push ${missing.length === 1 ? 'it' : 'them'} first (Library → Push to Hub…).`;
}

export const useShareStore = create<ShareStore>((set, get) => ({
  link: null,
  opened: IDLE_JOB,

  makeLink() {
    const { board, settings, grid, lines, previewOptions } = useComposeStore.getState();
    const { items, use } = useLibraryStore.getState();
    const onBoard = boardItems(board, items);
    const why = linkRefusal(onBoard);
    if (why !== null) {
      set({ link: { state: 'refused', why } });
      return;
    }
    const info = useModelStore.getState().model.info;
    const composition: SharedComposition = {
      ...(info && { baseModel: info.baseModel }),
      adapters: onBoard.map((item) => ({ ...item.hub!, ...(use[item.id] ?? DEFAULT_USE) })),
      merge: mergeOptions(settings, fittedGrid(grid, info?.config.numLayers ?? 0), lines),
      prompt: previewOptions.prompt,
    };
    set({
      link: {
        state: 'made',
        url: compositionLink(location.href, composition),
        adapters: onBoard.length,
      },
    });
  },

  async open(hash) {
    if (get().opened.state === 'running') return;
    let shared: SharedComposition | null;
    try {
      shared = sharedComposition(hash);
    } catch (e) {
      set({ opened: failedJob(errorMessage(e)) });
      return;
    }
    const studio = studioApi();
    if (!shared || !studio) return;
    const { adapters, merge, prompt, baseModel } = shared;
    const show = (opened: Job<OpenedLink>) => {
      set({ opened });
    };
    await runJob(show, async (onProgress) => {
      const ids: string[] = [];
      const names: string[] = [];
      let reused = 0;
      for (const [i, adapter] of adapters.entries()) {
        onProgress(i, adapters.length);
        const ref = { repo: adapter.repo, revision: adapter.revision };
        const result = await studio
          .importAdapterFromHub(ref, { force: true, baseUrl: hubEndpoint() })
          .catch((e: unknown) => {
            throw new Error(`Could not open the shared composition: ${errorMessage(e)}`);
          });
        ids.push(result.item.id);
        names.push(result.item.name);
        if (result.reused) reused++;
      }
      onProgress(adapters.length, adapters.length);
      await useLibraryStore.getState().refresh();
      const info = useModelStore.getState().model.info;
      const grid = gridForModel(merge.layerGrid, info?.config.numLayers ?? 0);
      const compose = useComposeStore.getState();
      useComposeStore.setState({
        board: ids,
        settings: settingsFromOptions(merge),
        grid: typeof grid === 'string' || grid.length === 0 ? null : grid,
        lines: merge.lines ?? NEUTRAL_LINES,
        previewOptions: {
          ...compose.previewOptions,
          prompt: prompt ?? compose.previewOptions.prompt,
        },
      });
      await useLibraryStore
        .getState()
        .useOnly(Object.fromEntries(adapters.map(({ on, weight }, i) => [ids[i], { on, weight }])));
      // Opened: a reload shows the board as the user leaves it, not the link again.
      history.replaceState(history.state, '', location.pathname + location.search);
      const otherBase =
        baseModel !== undefined && info && baseModel !== info.baseModel && baseModel !== info.name
          ? baseModel
          : null;
      return { names, reused, otherBase, notes: typeof grid === 'string' ? [grid] : [] };
    });
  },

  dismissOpened() {
    set({ opened: IDLE_JOB });
  },
}));

// A link made shows the board as it was: a change to what it holds (the board, the card, the
// switches and weights, the library, the model) takes it away until it is made again.
const dropLinkOn =
  <S>(fields: (keyof S)[]) =>
  (state: S, previous: S) => {
    if (useShareStore.getState().link && fields.some((f) => state[f] !== previous[f]))
      useShareStore.setState({ link: null });
  };
useComposeStore.subscribe(dropLinkOn(['board', 'settings', 'grid', 'lines', 'previewOptions']));
useLibraryStore.subscribe(dropLinkOn(['items', 'use']));
useModelStore.subscribe((state, previous) => {
  if (state.model.info !== previous.model.info) useShareStore.setState({ link: null });
});
