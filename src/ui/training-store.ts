import { create } from 'zustand';
import { persist } from 'zustand/middleware';
import { errorMessage } from '../errors.ts';
import type {
  HistoryPoint,
  RunHandoffInfo,
  Sample,
  SavedRunInfo,
  TrainConfig,
  TrainingOutcome,
  TrainProgress,
} from '../worker/api.ts';
import { studioApi } from './gpu-store.ts';
import { useLibraryStore } from './library-store.ts';
import { useTrainSettingsStore } from './train-settings-store.ts';
import { withUpdates } from './worker-updates.ts';

/** What a run draws: its curve so far and the latest sample generations. */
export interface RunCurve {
  fileName: string;
  config: TrainConfig;
  history: HistoryPoint[];
  samples: Sample[];
}

export type RunView =
  | { state: 'idle' }
  | (RunCurve & {
      state: 'running';
      /** The latest event (its phase and message). */
      progress: TrainProgress | null;
      /** The latest training step's event: throughput and ETA (evaluations report zeros). */
      metrics: TrainProgress | null;
      /** What the user asked for that the loop reaches only after the current step. */
      request: 'pause' | 'stop' | null;
      paused: boolean;
    })
  | (RunCurve & { state: 'ended'; outcome: TrainingOutcome })
  | (RunCurve & { state: 'failed'; message: string });

interface TrainingStore {
  run: RunView;
  /** A checkpoint in the browser that a reload (or a stopped run) can continue. */
  saved: SavedRunInfo | null;
  /** The latest run with a checkpoint, as its export for another engine hands it off. */
  handoff: RunHandoffInfo | null;
  /** Why that run cannot be exported, in one line. */
  handoffError: string | null;
  start: (config: TrainConfig, fileName: string) => Promise<void>;
  pause: () => Promise<void>;
  resume: () => Promise<void>;
  stop: () => Promise<void>;
  /** Also asks for the run an export would hand off. */
  checkSaved: () => Promise<void>;
  checkHandoff: () => Promise<void>;
  resumeSaved: () => Promise<void>;
  discardSaved: () => Promise<void>;
}

export const useTrainingStore = create<TrainingStore>()(
  persist(
    (set, get) => {
      function onProgress(p: TrainProgress) {
        const { run } = get();
        if (run.state !== 'running') return;
        set({
          run: {
            ...run,
            progress: p,
            metrics: p.phase === 'training' && p.step > 0 ? p : run.metrics,
            history: p.point ? [...run.history, p.point] : run.history,
            samples: p.samples && p.samples.length > 0 ? p.samples : run.samples,
            paused: p.phase === 'paused',
            request: p.phase === 'paused' && run.request === 'pause' ? null : run.request,
          },
        });
      }

      /** Runs `train` with a fresh view of the run, and records how it ended. */
      async function track(
        curve: RunCurve,
        train: (onProgress: (p: TrainProgress) => void) => Promise<TrainingOutcome>,
      ) {
        if (get().run.state === 'running') return;
        // The form shows the run's own settings (a resumed run's, not the form's defaults).
        useTrainSettingsStore.getState().adopt(curve.config);
        set({
          saved: null,
          handoff: null,
          handoffError: null,
          run: {
            ...curve,
            state: 'running',
            progress: null,
            metrics: null,
            request: null,
            paused: false,
          },
        });
        try {
          const outcome = await withUpdates(onProgress, train);
          set({
            run: { ...curve, ...latestCurve(), state: 'ended', outcome, history: outcome.history },
          });
        } catch (e) {
          set({ run: { ...curve, ...latestCurve(), state: 'failed', message: errorMessage(e) } });
        }
        // A stopped or failed run left a checkpoint to continue; the adapter is in the library.
        await Promise.all([get().checkSaved(), useLibraryStore.getState().refresh()]);
      }

      function latestCurve(): Pick<RunCurve, 'history' | 'samples'> {
        const { run } = get();
        return run.state === 'idle' ? { history: [], samples: [] } : run;
      }

      function request(kind: 'pause' | 'stop') {
        const { run } = get();
        if (run.state === 'running') set({ run: { ...run, request: kind } });
      }

      return {
        run: { state: 'idle' },
        saved: null,
        handoff: null,
        handoffError: null,

        async start(config, fileName) {
          const studio = studioApi();
          if (!studio) return;
          await track({ fileName, config, history: [], samples: [] }, (onProgress) =>
            studio.startTraining(config, onProgress),
          );
        },

        async pause() {
          request('pause');
          await studioApi()?.pauseTraining();
        },

        async resume() {
          const { run } = get();
          if (run.state === 'running') set({ run: { ...run, request: null, paused: false } });
          await studioApi()?.resumeTraining();
        },

        async stop() {
          request('stop');
          await studioApi()?.stopTraining();
        },

        async checkSaved() {
          const studio = studioApi();
          if (!studio || get().run.state === 'running') return;
          try {
            set({ saved: await studio.savedRun() });
          } catch {
            // An unreadable store only means nothing to resume.
            set({ saved: null });
          }
          await get().checkHandoff();
        },

        async checkHandoff() {
          const studio = studioApi();
          if (!studio || get().run.state === 'running') return;
          try {
            set({ handoff: await studio.exportableRun(), handoffError: null });
          } catch (e) {
            set({ handoff: null, handoffError: errorMessage(e) });
          }
        },

        async resumeSaved() {
          const studio = studioApi();
          const { saved } = get();
          if (!studio || !saved) return;
          const curve = {
            fileName: saved.fileName,
            config: saved.config,
            history: saved.history,
            samples: [],
          };
          await track(curve, (onProgress) => studio.resumeSavedRun(onProgress));
        },

        async discardSaved() {
          await studioApi()?.discardSavedRun();
          set({ saved: null });
          await get().checkHandoff();
        },
      };
    },
    {
      name: 'lora-studio-last-run',
      version: 1,
      // A finished run survives a reload with its curve, samples, outcome and settings; a run
      // stopped, failed or cut off mid-run continues from its checkpoint instead (the saved-run
      // banner draws its curve).
      partialize: ({ run }) => ({
        run:
          run.state === 'ended' && run.outcome.status === 'done'
            ? run
            : ({ state: 'idle' } as const),
      }),
      onRehydrateStorage: () => (state) => {
        if (state && state.run.state !== 'idle')
          useTrainSettingsStore.getState().adopt(state.run.config);
      },
    },
  ),
);
