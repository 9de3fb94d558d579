// The training part of the Studio API: the dataset the user dropped, one run at a time with
// pause/resume/stop, checkpoints in the run store (so a reload can continue the run), the
// trained adapter landing in the library as PEFT files, and the latest run's export for other
// engines (run-handoff.ts).
import { transfer } from 'comlink';
import type { AdapterLibrary } from '../adapters/library.ts';
import { basisOf } from '../adapters/inits.ts';
import { trainedCard } from '../adapters/model-card.ts';
import { readPeftAdapter } from '../adapters/peft-read.ts';
import { baseModelId } from '../model/load.ts';
import { prepareDataset, type PreparedData } from '../train/data.ts';
import type { DatasetSource, RunStore } from '../train/run-store.ts';
import {
  train,
  TrainControl,
  type Checkpoint,
  type TrainConfig,
  type TrainProgress,
} from '../train/trainer.ts';
import { newId } from './adapters.ts';
import {
  TRAINING_NEEDS_WEBGPU,
  type DatasetSummary,
  type SavedRunInfo,
  type StudioApi,
  type TrainingOutcome,
} from './api.ts';
import type { LoadedModel } from './loaded.ts';
import {
  dataIdentity,
  handoffInfo,
  handoffZip,
  runName,
  type HandoffSource,
} from './run-handoff.ts';

export interface TrainingDeps {
  /** The loaded model, or undefined. */
  loaded(): LoadedModel | undefined;
  runStore: RunStore;
  library: AdapterLibrary;
}

type TrainingApi = Pick<
  StudioApi,
  | 'prepareData'
  | 'startTraining'
  | 'pauseTraining'
  | 'resumeTraining'
  | 'stopTraining'
  | 'savedRun'
  | 'resumeSavedRun'
  | 'discardSavedRun'
  | 'exportableRun'
  | 'exportRun'
> & { readonly busy: boolean };

type Prepared = { source: DatasetSource; data: PreparedData; model: string; seqLen: number };

export function createTrainingApi(deps: TrainingDeps): TrainingApi {
  let dataset: Prepared | undefined;
  let control: TrainControl | undefined;
  // The last checkpoint of a run that finished in this session (the run store keeps only runs to
  // continue), kept for its export; a new run replaces it.
  let finished: HandoffSource | undefined;

  function requireModel() {
    const loaded = deps.loaded();
    if (!loaded) throw new Error('Load a model first: training fine-tunes the loaded model.');
    return loaded;
  }

  function prepare(
    source: DatasetSource,
    onProgress?: (done: number, total: number) => void,
  ): Prepared {
    const loaded = requireModel();
    const seqLen = Math.min(source.options.seqLen, loaded.model.config.maxPositions);
    const data = prepareDataset(
      source.content,
      source.fileName,
      loaded.tokenizer,
      { ...source.options, seqLen },
      onProgress,
    );
    return { source, data, model: loaded.name, seqLen };
  }

  async function run(
    config: TrainConfig,
    prepared: typeof dataset,
    onProgress: ((p: TrainProgress) => void) | undefined,
    resumeFrom?: Checkpoint,
  ): Promise<TrainingOutcome> {
    if (control) throw new Error('A training run is already in progress.');
    const loaded = requireModel();
    if (loaded.model.where !== 'gpu') throw new Error(TRAINING_NEEDS_WEBGPU);
    const { gpu, model } = loaded.model;
    if (!prepared || prepared.model !== loaded.name)
      throw new Error('Choose a dataset for this model first.');
    const { source } = prepared;
    control = new TrainControl();
    finished = undefined;
    try {
      // Recorded in every checkpoint, as the CLI records it: what the export reads.
      const data = await dataIdentity(source, prepared.seqLen);
      const result = await train({
        gpu,
        model,
        baseModel: loaded.name,
        data: prepared.data,
        config,
        tokenizer: loaded.tokenizer,
        control,
        resumeFrom,
        onProgress,
        store: {
          save: (checkpoint) =>
            deps.runStore.save({
              checkpoint: { ...checkpoint, data },
              dataset: source,
              savedAt: Date.now(),
            }),
        },
      });
      try {
        const { lora, train: settings } = config;
        const id = newId('trained');
        const name = runName(source.fileName, lora);
        if (result.steps > 0) {
          const { files } = await result.adapter.peftFiles(baseModelId(loaded), model.config);
          const { summary } = prepared.data;
          const card = trainedCard({
            name,
            baseModel: baseModelId(loaded),
            lora,
            steps: result.steps,
            lr: settings.lr,
            data: { fileName: source.fileName, ...summary },
            trainLossFirst: result.trainLossFirst,
            trainLossLast: result.trainLossLast,
            valLossFirst: result.valLossFirst,
            valLossLast: result.valLossLast,
          });
          files.set('README.md', new TextEncoder().encode(card));
          await deps.library.add({
            id,
            name,
            baseModel: loaded.name,
            createdAt: Date.now(),
            origin: `trained: ${lora.init}, rank ${lora.rank}, ${result.steps}/${settings.steps} steps`,
            files: Object.fromEntries(files),
            details: readPeftAdapter(files, name).details,
            basis: basisOf(lora),
            dylora: lora.dylora ? true : undefined,
          });
        }
        // A finished run needs no resuming; a stopped or failed one keeps its last checkpoint.
        // The finished one's stays here for its export.
        if (result.status === 'done') {
          const last = await deps.runStore.load();
          finished = last && {
            saved: last,
            peftBaseModel: baseModelId(loaded),
            maxPositions: model.config.maxPositions,
          };
          await deps.runStore.clear();
        }
        // Everything but the GPU-side adapter crosses to the UI.
        const outcome: Partial<typeof result> = { ...result };
        delete outcome.adapter;
        return { ...(outcome as TrainingOutcome), adapterId: result.steps > 0 ? id : null };
      } finally {
        result.adapter.dispose();
      }
    } finally {
      control = undefined;
    }
  }

  return {
    get busy() {
      return control !== undefined;
    },
    async prepareData(content, fileName, options, onProgress): Promise<DatasetSummary> {
      await Promise.resolve(); // a failure rejects the promise instead of throwing at the call
      dataset = prepare({ content, fileName, options }, onProgress);
      return dataset.data.summary;
    },
    startTraining(config, onProgress) {
      return run(config, dataset, onProgress);
    },
    pauseTraining() {
      control?.pause();
      return Promise.resolve();
    },
    resumeTraining() {
      control?.resume();
      return Promise.resolve();
    },
    stopTraining() {
      control?.stop();
      return Promise.resolve();
    },
    async savedRun() {
      const saved = await deps.runStore.load();
      if (!saved) return null;
      const { checkpoint: c } = saved;
      const info: SavedRunInfo = {
        baseModel: c.baseModel,
        fileName: saved.dataset.fileName,
        step: c.step,
        totalSteps: c.config.train.steps,
        savedAt: saved.savedAt,
        config: c.config,
        history: c.history,
        matchesModel: deps.loaded()?.name === c.baseModel,
      };
      return info;
    },
    async resumeSavedRun(onProgress) {
      const saved = await deps.runStore.load();
      if (!saved) throw new Error('There is no saved run to resume.');
      const loaded = requireModel();
      if (loaded.name !== saved.checkpoint.baseModel)
        throw new Error(
          `The saved run trains ${saved.checkpoint.baseModel}; load that model to resume it (loaded: ${loaded.name}).`,
        );
      // The saved run's own data; the dataset the Data panel prepared stays the current one.
      return run(saved.checkpoint.config, prepare(saved.dataset), onProgress, saved.checkpoint);
    },
    discardSavedRun() {
      return deps.runStore.clear();
    },
    async exportableRun() {
      if (control) return null;
      const source = await exportSource();
      return source ? handoffInfo(source) : null;
    },
    async exportRun(target, modelId) {
      if (control) throw new Error('Stop the training run before you export it.');
      const source = await exportSource();
      if (!source)
        throw new Error('There is no run to export: finish or stop a training run first.');
      const zip = await handoffZip(source, target, modelId);
      return transfer(zip, [zip.bytes.buffer]);
    },
  };

  /**
   * The latest run with a checkpoint: the run store's (stopped, failed, or saved before a reload;
   * a new run's first checkpoint replaces it), else the one that finished in this session.
   */
  async function exportSource(): Promise<HandoffSource | undefined> {
    const saved = await deps.runStore.load();
    if (!saved) return finished;
    // Its base's Hub id and context are known where that model is the loaded one.
    const loaded = deps.loaded();
    const same = loaded?.name === saved.checkpoint.baseModel ? loaded : undefined;
    return {
      saved,
      peftBaseModel: same && baseModelId(same),
      maxPositions: same?.model.config.maxPositions,
    };
  }
}
