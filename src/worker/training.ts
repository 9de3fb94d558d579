// The training part of the Studio API: the dataset the user dropped, one run at a time with
// pause/resume/stop, checkpoints in the run store (so a reload can continue the run), and the
// trained adapter landing in the library as PEFT files.
import type { AdapterLibrary } from '../adapters/library.ts';
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
> & { readonly busy: boolean };

export function createTrainingApi(deps: TrainingDeps): TrainingApi {
  let dataset: { source: DatasetSource; data: PreparedData; model: string } | undefined;
  let control: TrainControl | undefined;

  function requireModel() {
    const loaded = deps.loaded();
    if (!loaded) throw new Error('Load a model first: training fine-tunes the loaded model.');
    return loaded;
  }

  function prepare(source: DatasetSource): {
    source: DatasetSource;
    data: PreparedData;
    model: string;
  } {
    const loaded = requireModel();
    const seqLen = Math.min(source.options.seqLen, loaded.model.config.maxPositions);
    const data = prepareDataset(source.content, source.fileName, loaded.tokenizer, {
      ...source.options,
      seqLen,
    });
    return { source, data, model: loaded.name };
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
    try {
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
            deps.runStore.save({ checkpoint, dataset: source, savedAt: Date.now() }),
        },
      });
      try {
        const { lora, train: settings } = config;
        const id = newId('trained');
        const name = `${source.fileName.replace(/\.[^.]+$/, '')} · ${lora.init} r${lora.rank}`;
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
          });
        }
        // A finished run needs no resuming; a stopped or failed one keeps its last checkpoint.
        if (result.status === 'done') await deps.runStore.clear();
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
    async prepareData(content, fileName, options): Promise<DatasetSummary> {
      await Promise.resolve(); // a failure rejects the promise instead of throwing at the call
      dataset = prepare({ content, fileName, options });
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
  };
}
