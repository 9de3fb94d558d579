// The Compose panel's state: which library adapters are on the board, the merge settings, and
// the worker jobs the panel runs (comparison, live preview, bake, merge report, weight sweep).
// Whether an adapter is applied and with which weight is not kept here: that is the library's
// run-time composition (library-store `use`), which the board edits directly, so the
// playground and the preview always generate with what the board shows.
import { create } from 'zustand';
import { persist } from 'zustand/middleware';
import { errorMessage } from '../errors.ts';
import {
  isAttentionKind,
  modelModules,
  isMergeMethod,
  gridPreset,
  type AdapterComparison,
  type EvalText,
  type GenerateOptions,
  type GridPreset,
  type LibraryItem,
  type MergeMethod,
  type MergeOptions,
  type MergeReport,
  type MergeSpec,
  type SweepPoint,
} from '../worker/api.ts';
import { studioApi } from './gpu-store.ts';
import { activeAdapters, DEFAULT_USE, useLibraryStore, type AdapterUse } from './library-store.ts';
import { useModelStore } from './model-store.ts';
import { formatWeight } from './format.ts';
import { failedJob, IDLE_JOB, runJob, STARTED_JOB, type Job } from './job.ts';
import { DEFAULT_MERGE, methodParameters, type MergeSettings } from './merge-settings.ts';
import { withUpdates } from './worker-updates.ts';

/** Stops the running bake, report or sweep at its next step (the job then shows "Cancelled."). */
export function cancelMergeJob(): void {
  void studioApi()?.cancelMergeJob();
}

/** LiNeS scaling λ(ℓ) = alpha + beta·ℓ/(L−1); these values leave every layer as it is. */
export const NEUTRAL_LINES = { alpha: 1, beta: 0 };

export interface PreviewOptions {
  prompt: string;
  seed: number;
  /** Always the most likely token; otherwise sampled (temperature 0.8, top-p 0.9) from `seed`. */
  greedy: boolean;
  /** Generate again when the composition changes. */
  live: boolean;
}

/** One text of the preview and what generated it. */
export interface PreviewText {
  kind: 'base' | 'alone' | 'composition';
  label: string;
  text: string;
  /** Still generating, or waiting its turn. */
  pending: boolean;
}

export interface PreviewView {
  texts: PreviewText[];
  running: boolean;
  /** The composition changed after these texts were generated. */
  stale: boolean;
  error: string | null;
}

/** A source of a merge, as the report names it. */
export interface MergeSourceName {
  id: string;
  name: string;
}

export interface Baked {
  item: LibraryItem;
  /** Share of ‖ΔW‖²_F the output rank dropped. */
  lostEnergy: number;
  spec: MergeSpec;
  sources: MergeSourceName[];
}

export interface Compared {
  /** The library ids compared, in board order. */
  ids: string[];
  comparison: AdapterComparison;
}

/** The weights the sweep gives every source at once: 0 (the base) to 1.5. */
export const SWEEP_WEIGHTS = [0, 0.25, 0.5, 0.75, 1, 1.25, 1.5];
/** New tokens per preview text: enough to see a style, quick enough to run four times. */
const PREVIEW_TOKENS = 40;
/** Waits after the last change before the slow jobs run again. */
const COMPARE_SETTLE_MS = 400;
const PREVIEW_SETTLE_MS = 600;

interface ComposeStore {
  /** Library ids on the board, in the order chosen: a merge's order (SLERP's ends, OPCM's sequence). */
  board: string[];
  settings: MergeSettings;
  /** Layer × module multipliers (rows: layers, columns: gridModules()); null: all 1. */
  grid: number[][] | null;
  lines: { alpha: number; beta: number };
  comparison: Job<Compared>;
  /** Which of the comparison's pairs the layer × module heatmap shows. */
  pair: number;
  previewOptions: PreviewOptions;
  preview: PreviewView;
  bake: Job<Baked>;
  /** Held-out text per library id, for the merge report; kept across bakes. */
  evalTexts: Partial<Record<string, string>>;
  report: Job<MergeReport>;
  sweep: Job<SweepPoint[]>;

  choose: (id: string, onBoard: boolean) => void;
  setSettings: (patch: Partial<MergeSettings>) => void;
  setGridPreset: (preset: GridPreset, layers: number) => void;
  setGridCell: (layer: number, column: number, value: number, layers: number) => void;
  setLines: (patch: Partial<{ alpha: number; beta: number }>) => void;
  /** Compares the board's adapters once the board has stopped changing. */
  requestComparison: (ids: string[]) => void;
  selectPair: (pair: number) => void;
  setPreviewOptions: (patch: Partial<PreviewOptions>) => void;
  runPreview: () => Promise<void>;
  /** After a composition change: marks the texts stale and, when live, generates them again. */
  compositionChanged: () => void;
  bakeMerge: () => Promise<void>;
  setEvalText: (id: string, text: string) => void;
  runReport: () => Promise<void>;
  runSweep: () => Promise<void>;
}

/** The board's adapters that are still in the library, in board order. */
export function boardItems(board: readonly string[], items: readonly LibraryItem[]): LibraryItem[] {
  return board.flatMap((id) => items.filter((item) => item.id === id));
}

/** The board's adapters that are switched on, with their weights: a merge's sources. */
export function boardSources(
  board: readonly string[],
  items: readonly LibraryItem[],
  use: Readonly<Partial<Record<string, AdapterUse>>>,
): (MergeSourceName & { weight: number })[] {
  return boardItems(board, items).flatMap((item) => {
    const u = use[item.id] ?? DEFAULT_USE;
    return u.on ? [{ id: item.id, name: item.name, weight: u.weight }] : [];
  });
}

/** The grid when it was made for a model of `layers` layers; another model's grid does not apply. */
export function fittedGrid(
  grid: number[][] | null,
  layers: number,
  columns = gridModules().length,
): number[][] | null {
  return grid?.length === layers && grid.every((row) => row.length === columns) ? grid : null;
}

/** The grid's columns: the loaded model's module names. */
export function gridModules(): string[] {
  return modelModules(useModelStore.getState().model.info?.config);
}

const isNeutral = (grid: readonly number[][]) => grid.every((row) => row.every((w) => w === 1));

/** The merge the card describes: the parameters the method reads, grid and LiNeS when not neutral. */
export function mergeOptions(
  settings: MergeSettings,
  grid: number[][] | null,
  lines: { alpha: number; beta: number },
): MergeOptions {
  const options: MergeOptions = { method: settings.method, ...methodParameters(settings) };
  if (settings.clamp !== null) options.clamp = settings.clamp;
  if (grid && !isNeutral(grid)) options.layerGrid = { modules: gridModules(), weights: grid };
  if (lines.alpha !== NEUTRAL_LINES.alpha || lines.beta !== NEUTRAL_LINES.beta)
    options.lines = { ...lines };
  return options;
}

/** The spec the board describes: its sources and the card's merge. */
export function mergeSpec(
  sources: readonly { id: string; weight: number }[],
  settings: MergeSettings,
  grid: number[][] | null,
  lines: { alpha: number; beta: number },
): MergeSpec {
  const { method, ...options } = mergeOptions(settings, grid, lines);
  return { method, adapters: sources.map(({ id, weight }) => ({ id, weight })), ...options };
}

/** "ties_svd of zimmy + snorp": the name a merge gets when the user gives none. */
export function defaultMergeName(method: MergeMethod, sources: readonly MergeSourceName[]): string {
  return `${method} of ${sources.map((s) => s.name).join(' + ')}`;
}

interface PreviewPlan {
  kind: PreviewText['kind'];
  label: string;
  composition: { id: string; weight: number }[];
}

/** The base, each adapter in use alone (when there are several), and the whole composition. */
function previewPlans(active: readonly { item: LibraryItem; weight: number }[]): PreviewPlan[] {
  const composition = active.map(({ item, weight }) => ({ id: item.id, weight }));
  const plans: PreviewPlan[] = [{ kind: 'base', label: 'Base model', composition: [] }];
  if (active.length > 1)
    for (const { item, weight } of active)
      plans.push({
        kind: 'alone',
        label: `${item.name} × ${formatWeight(weight)} alone`,
        composition: [{ id: item.id, weight }],
      });
  if (active.length > 0)
    plans.push({
      kind: 'composition',
      label: `Composition: ${active.map(({ item, weight }) => `${item.name} × ${formatWeight(weight)}`).join(' + ')}`,
      composition,
    });
  return plans;
}

/** Resolves once the playground is not generating: the preview must not re-apply under it. */
function playgroundIdle(): Promise<void> {
  return new Promise((resolve) => {
    const idle = () => useModelStore.getState().generation.state !== 'running';
    if (idle()) {
      resolve();
      return;
    }
    const stop = useModelStore.subscribe(() => {
      if (!idle()) return;
      stop();
      resolve();
    });
  });
}

export const useComposeStore = create<ComposeStore>()(
  persist(
    (set, get) => {
      // A newer request makes an older one's answer stale: only the latest is shown.
      let comparisonRequest = 0;
      let compareTimer: ReturnType<typeof setTimeout> | undefined;
      let previewRun = 0;
      let previewTimer: ReturnType<typeof setTimeout> | undefined;

      function setPreviewText(run: number, index: number, text: string, pending: boolean) {
        if (run !== previewRun) return;
        const { preview } = get();
        const texts = preview.texts.map((t, i) => (i === index ? { ...t, text, pending } : t));
        set({ preview: { ...preview, texts } });
      }

      async function compare(ids: string[], request: number) {
        const studio = studioApi();
        if (!studio) return;
        // A new comparison starts at its first pair.
        const show = (comparison: Job<Compared>) => {
          set(comparison.state === 'done' ? { comparison, pair: 0 } : { comparison });
        };
        await runJob(
          show,
          async () => ({ ids, comparison: await studio.compare(ids) }),
          () => request === comparisonRequest,
        );
      }

      /** The eval texts of the baked merge's sources that have one, as the worker takes them. */
      function evalTexts(): EvalText[] | string {
        const { bake, evalTexts: texts } = get();
        if (bake.state !== 'done') return 'Bake a merge first.';
        const filled = bake.result.sources.flatMap(({ id }) => {
          const text = texts[id]?.trim() ?? '';
          return text === '' ? [] : [{ id, text }];
        });
        return filled.length > 0
          ? filled
          : 'Paste held-out text for at least one of the merged adapters.';
      }

      return {
        board: [],
        settings: DEFAULT_MERGE,
        grid: null,
        lines: NEUTRAL_LINES,
        comparison: IDLE_JOB,
        pair: 0,
        previewOptions: { prompt: 'Once upon a time', seed: 0, greedy: true, live: true },
        preview: { texts: [], running: false, stale: false, error: null },
        bake: IDLE_JOB,
        evalTexts: {},
        report: IDLE_JOB,
        sweep: IDLE_JOB,

        choose(id, onBoard) {
          const board = get().board.filter((b) => b !== id);
          set({ board: onBoard ? [...board, id] : board });
          // What is applied is on the board: taken off, it is switched off.
          const library = useLibraryStore.getState();
          if (!onBoard && library.use[id]?.on) library.setUse(id, false);
        },

        setSettings(patch) {
          set({ settings: { ...get().settings, ...patch } });
        },

        setGridPreset(preset, layers) {
          set({
            grid:
              preset === 'uniform'
                ? null
                : gridPreset(preset, layers, gridModules(), isAttentionKind).weights,
          });
        },

        setGridCell(layer, column, value, layers) {
          if (!Number.isFinite(value)) return;
          const grid =
            fittedGrid(get().grid, layers) ??
            Array.from({ length: layers }, () => gridModules().map(() => 1));
          set({
            grid: grid.map((row, l) =>
              l === layer ? row.map((w, c) => (c === column ? value : w)) : row,
            ),
          });
        },

        setLines(patch) {
          set({ lines: { ...get().lines, ...patch } });
        },

        requestComparison(ids) {
          const request = ++comparisonRequest;
          clearTimeout(compareTimer);
          if (ids.length < 2) {
            set({ comparison: IDLE_JOB });
            return;
          }
          // Shown as running while the board settles: the answer on screen is already outdated.
          set({ comparison: STARTED_JOB });
          compareTimer = setTimeout(() => void compare(ids, request), COMPARE_SETTLE_MS);
        },

        selectPair(pair) {
          set({ pair });
        },

        setPreviewOptions(patch) {
          set({ previewOptions: { ...get().previewOptions, ...patch } });
        },

        async runPreview() {
          const studio = studioApi();
          if (!studio || !useModelStore.getState().model.info) return;
          clearTimeout(previewTimer);
          const run = ++previewRun;
          const { items, use } = useLibraryStore.getState();
          const plans = previewPlans(activeAdapters(items, use));
          set({
            preview: {
              texts: plans.map(({ kind, label }) => ({ kind, label, text: '', pending: true })),
              running: true,
              stale: false,
              error: null,
            },
          });
          const current = () => run === previewRun;
          const { prompt, seed, greedy } = get().previewOptions;
          const options: GenerateOptions = greedy
            ? { maxNewTokens: PREVIEW_TOKENS, temperature: 0 }
            : { maxNewTokens: PREVIEW_TOKENS, temperature: 0.8, topP: 0.9, seed };
          try {
            // In the composition queue: no slider's apply lands between an apply and its text.
            await useLibraryStore.getState().borrowComposition(async () => {
              await playgroundIdle();
              for (const [i, plan] of plans.entries()) {
                if (!current()) return;
                await studio.applyAdapters(plan.composition);
                if (!current()) return;
                const onText = (text: string) => {
                  setPreviewText(run, i, text, true);
                };
                const result = await withUpdates(onText, (cb) =>
                  studio.generate(prompt, options, cb),
                );
                setPreviewText(run, i, result.text, false);
              }
            });
            if (current()) set({ preview: { ...get().preview, running: false } });
          } catch (e) {
            if (!current()) return;
            // The texts not generated will not come: stop showing them as on their way.
            const texts = get().preview.texts.map((t) => ({ ...t, pending: false }));
            set({ preview: { texts, running: false, stale: false, error: errorMessage(e) } });
          }
        },

        compositionChanged() {
          const { preview, previewOptions, runPreview } = get();
          if (preview.texts.length === 0) return;
          set({ preview: { ...preview, stale: true } });
          clearTimeout(previewTimer);
          if (previewOptions.live)
            previewTimer = setTimeout(() => void runPreview(), PREVIEW_SETTLE_MS);
        },

        async bakeMerge() {
          const studio = studioApi();
          if (!studio || get().bake.state === 'running') return;
          const { board, settings, grid, lines } = get();
          const { items, use } = useLibraryStore.getState();
          const sources = boardSources(board, items, use);
          if (sources.length === 0) {
            set({ bake: failedJob('Switch on at least one adapter on the board.') });
            return;
          }
          const layers = useModelStore.getState().model.info?.config.numLayers ?? 0;
          const spec = mergeSpec(sources, settings, fittedGrid(grid, layers), lines);
          const name = settings.name.trim() || defaultMergeName(settings.method, sources);
          const named = sources.map(({ id, name: n }) => ({ id, name: n }));
          // The report and sweep were about the previous merge.
          set({ report: IDLE_JOB, sweep: IDLE_JOB });
          const show = (job: Job<Baked>) => {
            set({ bake: job });
          };
          await runJob(show, async (onProgress) => {
            const { item, lostEnergy } = await studio.merge(spec, name, onProgress);
            await useLibraryStore.getState().refresh();
            return { item, lostEnergy, spec, sources: named };
          });
        },

        setEvalText(id, text) {
          set({ evalTexts: { ...get().evalTexts, [id]: text } });
        },

        async runReport() {
          const studio = studioApi();
          const { bake, report } = get();
          if (!studio || bake.state !== 'done' || report.state === 'running') return;
          const texts = evalTexts();
          if (typeof texts === 'string') {
            set({ report: failedJob(texts) });
            return;
          }
          const show = (job: Job<MergeReport>) => {
            set({ report: job });
          };
          await runJob(show, (onProgress) =>
            studio.mergeReport(bake.result.item.id, texts, onProgress),
          );
        },

        async runSweep() {
          const studio = studioApi();
          if (!studio || get().sweep.state === 'running') return;
          const texts = evalTexts();
          if (typeof texts === 'string') {
            set({ sweep: failedJob(texts) });
            return;
          }
          const show = (job: Job<SweepPoint[]>) => {
            set({ sweep: job });
          };
          await runJob(show, (onProgress) => studio.weightSweep(texts, SWEEP_WEIGHTS, onProgress));
        },
      };
    },
    {
      // What the user set up survives a reload; jobs and their results do not.
      name: 'lora-studio-compose',
      version: 1,
      partialize: ({ board, settings, grid, lines, previewOptions, evalTexts }) => ({
        board,
        settings,
        grid,
        lines,
        previewOptions,
        evalTexts,
      }),
      // Settings saved by an older version get today's defaults for what they lack.
      merge(persisted, current) {
        const saved = persisted as Partial<ComposeStore>;
        const settings = { ...DEFAULT_MERGE, ...saved.settings };
        if (!isMergeMethod(settings.method)) settings.method = DEFAULT_MERGE.method;
        return { ...current, ...saved, settings };
      },
    },
  ),
);

// An adapter switched on anywhere (the library, a restored composition) goes on the board: the
// board shows everything applied, and only that.
useLibraryStore.subscribe((state, previous) => {
  if (state.use === previous.use) return;
  const { board } = useComposeStore.getState();
  const added = Object.keys(state.use).filter((id) => state.use[id]?.on && !board.includes(id));
  if (added.length > 0) useComposeStore.setState({ board: [...board, ...added] });
});
