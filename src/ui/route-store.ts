// The Route card's state: its settings (kept across reloads), the router's training as a job with
// its curve, and whether the router is what the model runs now. The worker ends routing when a
// composition is applied again (a board change, the live preview), so the store does too.
import { create } from 'zustand';
import { persist } from 'zustand/middleware';
import { errorMessage } from '../errors.ts';
import type { RouteOutcome, RoutePoint, RouteRequest } from '../worker/api.ts';
import { boardSources, useComposeStore } from './compose-store.ts';
import { studioApi } from './gpu-store.ts';
import { failedJob, IDLE_JOB, STARTED_JOB, type Job } from './job.ts';
import { activeAdapters, useLibraryStore } from './library-store.ts';
import { saveFile } from './download.ts';
import { withUpdates } from './worker-updates.ts';

export type RouteSettings = Pick<RouteRequest, 'mode' | 'topK' | 'steps' | 'lr'>;

export const DEFAULT_ROUTE: RouteSettings = { mode: 'token', topK: 1, steps: 40, lr: 1e-2 };

interface RouteStore {
  settings: RouteSettings;
  job: Job<RouteOutcome>;
  /** The curve so far (training and held-out loss). */
  points: RoutePoint[];
  /** The trained router is applied: the playground generates through it. */
  applied: boolean;
  setSettings: (patch: Partial<RouteSettings>) => void;
  train: () => Promise<void>;
  stop: () => void;
  /** Puts the board's composition back in the router's place. */
  end: () => Promise<void>;
  /** Why the last download failed, if it did. */
  downloadError: string | null;
  /** Saves the applied router as a zip the CLI's --router loads. */
  download: () => Promise<void>;
  /** The router baked into one library adapter, with what that costs on the held-out texts. */
  baked: Job<{ name: string; routedLoss: number | null; bakedLoss: number | null }>;
  bake: (name: string) => Promise<void>;
}

export const useRouteStore = create<RouteStore>()(
  persist(
    (set, get) => ({
      settings: DEFAULT_ROUTE,
      job: IDLE_JOB,
      points: [],
      applied: false,
      downloadError: null,
      baked: IDLE_JOB,
      setSettings(patch) {
        set({ settings: { ...get().settings, ...patch } });
      },
      async train() {
        const studio = studioApi();
        if (!studio || get().job.state === 'running') return;
        const { board, evalTexts } = useComposeStore.getState();
        const { items, use } = useLibraryStore.getState();
        const adapters = boardSources(board, items, use).map((s) => s.id);
        const texts = adapters.flatMap((id) => {
          const text = evalTexts[id]?.trim() ?? '';
          return text === '' ? [] : [{ id, text }];
        });
        const { settings } = get();
        set({
          job: { state: 'running', done: 0, total: settings.steps },
          points: [],
          applied: false,
        });
        try {
          // The board's composition is in the worker's queue first: the router replaces it.
          await useLibraryStore.getState().settled();
          const onPoint = (point: RoutePoint, total: number) => {
            set({
              points: [...get().points, point],
              job: { state: 'running', done: point.step, total },
            });
          };
          const result = await withUpdates(onPoint, (cb) =>
            studio.trainRouter({ ...settings, adapters, texts }, cb),
          );
          set({ job: { state: 'done', result }, applied: true });
        } catch (e) {
          set({ job: failedJob(errorMessage(e)) });
        }
      },
      stop() {
        void studioApi()?.stopRouter();
      },
      async end() {
        const studio = studioApi();
        if (!studio) return;
        const library = useLibraryStore.getState();
        if (activeAdapters(library.items, library.use).length > 0) await library.reapply();
        else await studio.applyAdapters([]);
        set({ applied: false });
      },
      async bake(name) {
        const studio = studioApi();
        if (!studio || get().baked.state === 'running') return;
        set({ baked: STARTED_JOB });
        try {
          const { item, routedLoss, bakedLoss } = await studio.bakeRouter(name);
          await useLibraryStore.getState().refresh();
          set({ baked: { state: 'done', result: { name: item.name, routedLoss, bakedLoss } } });
        } catch (e) {
          set({ baked: failedJob(errorMessage(e)) });
        }
      },
      async download() {
        const studio = studioApi();
        if (!studio) return;
        try {
          const { name, bytes } = await studio.routerZip();
          saveFile(name, bytes, 'application/zip');
          set({ downloadError: null });
        } catch (e) {
          set({ downloadError: errorMessage(e) });
        }
      },
    }),
    {
      name: 'lora-studio-route',
      version: 1,
      partialize: ({ settings }) => ({ settings }),
    },
  ),
);

// Another composition applied in the worker (a board change, the live preview) ends routing.
useLibraryStore.subscribe((state, previous) => {
  if (state.use !== previous.use && useRouteStore.getState().applied)
    useRouteStore.setState({ applied: false });
});
useComposeStore.subscribe((state, previous) => {
  if (state.preview.running && !previous.preview.running && useRouteStore.getState().applied)
    useRouteStore.setState({ applied: false });
});
