import { errorMessage } from '../errors.ts';
import { acquireGpu, type Gpu } from '../gpu/device.ts';
import { GpuError } from '../gpu/errors.ts';
import type { ShaderLibrary } from '../gpu/shaders.ts';
import { persistTuning, restoreTuning, type TuningStore } from '../gpu/tuning.ts';
import { describeTile } from '../linalg/matmul.ts';
import { REPRESENTATIVE_PROBLEMS, tuneMatmul } from '../linalg/matmul-tuning.ts';
import { selfCheck } from '../linalg/self-check.ts';
import { generateTokens } from '../model/generate.ts';
import { hubModelFiles, type FileCache } from '../model/hub.ts';
import { baseModelId, loadModelFiles, type LoadedModelFiles } from '../model/load.ts';
import { meanLoss, runnerScorer, textSequences } from '../train/evaluate.ts';
import type { WeightPrecision } from '../model/weights.ts';
import { kvCacheBytes, weightMemoryByPrecision } from '../model/memory.ts';
import { bindingLimit } from '../model/forward.ts';
import { adaptedCpuModel, adaptedGpuModel, type AdaptedModel } from '../adapters/adapted-model.ts';
import type { AdapterLibrary } from '../adapters/library.ts';
import { gpuCompute, type MergeCompute } from '../merge/compute.ts';
import { cpuCompute } from '../merge/cpu/compute.ts';
import type { RunStore } from '../train/run-store.ts';
import type { GpuStatus, ModelInfo, ModelPlan, StudioApi, UnavailableReason } from './api.ts';
import { createAdapterApi } from './adapters.ts';
import { createExtractingApi } from './extracting.ts';
import type { LoadedModel } from './loaded.ts';
import { createMergingApi } from './merging.ts';
import { choosingRunner, createRoutingApi, type TokenChoice } from './routing.ts';
import { createSharingApi } from './sharing.ts';
import { createTrainingApi } from './training.ts';

export interface StudioEnvironment {
  /** `navigator.gpu`, or undefined where the browser has no WebGPU. */
  gpu: GPU | undefined;
  shaders: ShaderLibrary;
  /** False on http:// pages other than localhost, where browsers hide WebGPU. */
  secureContext: boolean;
  /** Where tuned kernel parameters persist (IndexedDB in the browser). */
  tuningStore: TuningStore;
  /** Where Hub downloads are kept between sessions (Cache Storage in the browser). */
  fileCache?: FileCache;
  /** The built-in model's files (fetched from the app's own origin in the browser). */
  builtinModel: () => Promise<{ checkpoint: Uint8Array; tokenizer: Uint8Array }>;
  /** Where training checkpoints survive a reload (IndexedDB in the browser). */
  runStore: RunStore;
  /** Where adapters are kept (IndexedDB in the browser). */
  library: AdapterLibrary;
}

/**
 * The Studio API over one GPU device, or over the CPU references where WebGPU cannot be had
 * (everything but training and the kernel tools: slower, as exact); the worker exposes it, Node
 * tests call it directly.
 */
export function createStudio(env: StudioEnvironment): StudioApi {
  let gpu: Gpu | undefined;
  // WebGPU could not be had: models and merges run on the CPU references.
  let onCpu = false;
  let loaded: (LoadedModel & { info: ModelInfo }) | undefined;
  let lastRead: (() => Promise<LoadedModelFiles>) | undefined;
  let notify: (status: GpuStatus) => void = () => undefined;

  function onCpuBecause(reason: UnavailableReason, detail: string): GpuStatus {
    onCpu = true;
    return { state: 'cpu', reason, detail };
  }

  async function acquire(): Promise<GpuStatus> {
    onCpu = false;
    if (!env.gpu)
      return env.secureContext
        ? onCpuBecause('no-webgpu', 'navigator.gpu is undefined')
        : onCpuBecause('insecure-context', 'WebGPU needs https:// or localhost');
    try {
      gpu = await acquireGpu(env.gpu, {
        shaders: env.shaders,
        onLost: (info) => {
          gpu = undefined;
          loaded = undefined;
          notify({ state: 'lost', reason: info.reason, detail: info.message });
        },
      });
      // Parameters tuned in an earlier session; a store that fails only costs speed.
      await restoreTuning(gpu, env.tuningStore).catch(() => undefined);
      return { state: 'ready', adapter: gpu.adapter };
    } catch (e) {
      const reason =
        e instanceof GpuError && e.context === 'requestAdapter' ? 'no-adapter' : 'device-failed';
      return onCpuBecause(reason, errorMessage(e));
    }
  }

  const training = createTrainingApi({
    loaded: () => loaded,
    runStore: env.runStore,
    library: env.library,
  });

  const adapters = createAdapterApi({
    loaded: () => loaded,
    library: env.library,
    fileCache: env.fileCache,
    compute,
  });

  const merging = createMergingApi({
    compute,
    loaded: () => loaded,
    library: env.library,
    parsedAdapter: (id) => adapters.parsedAdapter(id),
  });

  const extracting = createExtractingApi({
    compute,
    loaded: () => loaded,
    library: env.library,
    parsedAdapter: (id) => adapters.parsedAdapter(id),
  });

  const routing = createRoutingApi({
    loaded: () => loaded,
    parsedAdapter: (id) => adapters.parsedAdapter(id),
    async adapterFiles(id) {
      const found = await env.library.get(id);
      if (!found) throw new Error(`No adapter ${id} in the library.`);
      return found.files;
    },
    library: env.library,
  });

  const sharing = createSharingApi({
    compute,
    loaded: () => loaded,
    async entry(id) {
      const found = await env.library.get(id);
      if (!found) throw new Error(`No adapter ${id} in the library.`);
      return found;
    },
  });

  /** Refuses to swap the model out from under a training run. */
  function checkIdle(action: string): void {
    if (training.busy) throw new Error(`Stop the training run before you ${action}.`);
  }

  /**
   * Reads a model's files, tells `onPlan` what its weights take at each precision, then puts it
   * on the GPU (or, without WebGPU, on the CPU) at `precision`, replacing the loaded one. The
   * reader is kept, so the model can be loaded again at another precision.
   */
  async function load(
    read: () => Promise<LoadedModelFiles>,
    precision: WeightPrecision = 'file',
    onPlan?: (plan: ModelPlan) => void,
  ): Promise<ModelInfo> {
    checkIdle('load another model');
    const files = await read();
    lastRead = read;
    const { config, weights } = files;
    const plan: ModelPlan = {
      name: files.name,
      config,
      parameters: [...weights.values()].reduce((n, t) => n + t.data.length, 0),
      precision,
      weights: weightMemoryByPrecision(weights),
      bufferLimit: onCpu ? null : bindingLimit(requireGpu()),
    };
    onPlan?.(plan);
    const model = onCpu
      ? adaptedCpuModel(config, weights, precision)
      : adaptedGpuModel(requireGpu(), config, weights, precision);
    routing.end();
    loaded?.model.dispose();
    loaded = {
      name: files.name,
      hubId: files.hubId,
      info: { ...describeModel(plan, model), baseModel: baseModelId(files) },
      model,
      tokenizer: files.tokenizer,
    };
    return loaded.info;
  }

  /** Where merges and comparisons run. */
  function compute(): MergeCompute {
    return onCpu ? cpuCompute : gpuCompute(requireGpu());
  }

  function requireGpu(): Gpu {
    if (onCpu)
      throw new GpuError(
        'This browser offers no WebGPU: the studio runs on the CPU, and this needs a GPU.',
        'studio',
        'unavailable',
      );
    if (!gpu)
      throw new GpuError(
        'No GPU device: connect first (or reconnect after a loss).',
        'studio',
        'unavailable',
      );
    return gpu;
  }

  return {
    async connect(onStatus) {
      notify = onStatus;
      if (gpu) return { state: 'ready', adapter: gpu.adapter };
      return acquire();
    },
    async reconnect() {
      gpu?.destroy();
      gpu = undefined;
      loaded = undefined;
      const status = await acquire();
      notify(status);
      return status;
    },
    async selfCheck() {
      return selfCheck(requireGpu());
    },
    async tuneMatmul(problems = REPRESENTATIVE_PROBLEMS) {
      const device = requireGpu();
      const tuned = [];
      for (const problem of problems) {
        const tile = await tuneMatmul(device, problem);
        tuned.push({
          problem: problem.name,
          tile: describeTile(tile),
        });
      }
      await persistTuning(device, env.tuningStore);
      return tuned;
    },
    loadBuiltinModel(precision, onPlan) {
      return load(
        async () => {
          const { checkpoint, tokenizer } = await env.builtinModel();
          const files = [
            { name: 'stories260K.bin', bytes: () => Promise.resolve(checkpoint) },
            { name: 'tok512.bin', bytes: () => Promise.resolve(tokenizer) },
          ];
          return loadModelFiles(files, 'stories260K (built-in)');
        },
        precision,
        onPlan,
      );
    },
    loadModelFiles(files, name, precision, onPlan) {
      // File objects are handles: a reload at another precision reads them again.
      const modelFiles = files.map((f) => ({
        name: f.webkitRelativePath || f.name,
        bytes: async () => new Uint8Array(await f.arrayBuffer()),
        // Safetensors are read a tensor at a time: never the whole file in memory at once.
        size: f.size,
        range: async (start: number, end: number) =>
          new Uint8Array(await f.slice(start, end).arrayBuffer()),
      }));
      return load(() => loadModelFiles(modelFiles, name), precision, onPlan);
    },
    loadModelFromHub(repo, baseUrl, onProgress, precision, onPlan) {
      // A reload finds the files in the cache rather than holding the downloads in memory.
      const read = async () =>
        loadModelFiles(
          await hubModelFiles(repo, { baseUrl, cache: env.fileCache, onProgress }),
          repo,
        );
      return load(read, precision, onPlan);
    },
    reloadModel(precision, onPlan) {
      if (!lastRead) return Promise.reject(new Error('No model to load again.'));
      return load(lastRead, precision, onPlan);
    },
    unloadModel() {
      checkIdle('unload the model');
      routing.end();
      loaded?.model.dispose();
      loaded = undefined;
      return Promise.resolve();
    },
    async perplexity(text) {
      if (!loaded) throw new Error('No model loaded.');
      const { model, tokenizer } = loaded;
      const report = await meanLoss(
        runnerScorer(model),
        textSequences(tokenizer.encode(text), model.config.maxPositions),
      );
      if (!report) throw new RangeError('Perplexity needs at least two tokens of text.');
      return report;
    },
    async generate(prompt, options, onText) {
      if (!loaded) throw new Error('No model loaded.');
      const { model, tokenizer } = loaded;
      const start = performance.now();
      const ids = tokenizer.encode(prompt);
      const context = ids.length > 0 ? ids : [model.config.bosTokenId];
      const generated: number[] = [];
      const decode = (ids: number[]) => tokenizer.decode(ids, { skipSpecialTokens: true });
      const text = () => decode([...context, ...generated]);
      // Through a router, each token's text comes with the adapter its gates chose.
      const router = routing.active();
      const choices: TokenChoice[] = [];
      const runner =
        router && model.where === 'gpu'
          ? choosingRunner(model.gpu, model, router, (e) => choices.push(e))
          : model;
      try {
        for await (const token of generateTokens(runner, context, options)) {
          generated.push(token);
          onText?.(text());
        }
      } finally {
        if (runner !== model) runner.dispose();
      }
      const result = { text: text(), newTokens: generated.length, ms: performance.now() - start };
      if (!router) return result;
      const promptText = decode(context);
      let previous = promptText;
      const tokens = generated.map((_, i) => {
        const now = decode([...context, ...generated.slice(0, i + 1)]);
        const piece = now.slice(previous.length);
        previous = now;
        return { text: piece, ...(choices[i] ?? { expert: 0, layers: [] }) };
      });
      return { ...result, routing: { experts: router.experts, prompt: promptText, tokens } };
    },
    prepareData: training.prepareData,
    startTraining: training.startTraining,
    pauseTraining: training.pauseTraining,
    resumeTraining: training.resumeTraining,
    stopTraining: training.stopTraining,
    savedRun: training.savedRun,
    resumeSavedRun: training.resumeSavedRun,
    discardSavedRun: training.discardSavedRun,
    exportableRun: training.exportableRun,
    exportRun: training.exportRun,
    listAdapters: adapters.listAdapters,
    adapterFiles: adapters.adapterFiles,
    adapterZip: adapters.adapterZip,
    adapterGguf: adapters.adapterGguf,
    removeAdapter: adapters.removeAdapter,
    importAdapter: adapters.importAdapter,
    importAdapterFromHub: adapters.importAdapterFromHub,
    setAdapterHub: adapters.setAdapterHub,
    libraryZip: adapters.libraryZip,
    restoreLibrary: adapters.restoreLibrary,
    // A composition applied replaces the router's terms: routing ends.
    async applyAdapters(active, options) {
      await adapters.applyAdapters(active, options);
      routing.end();
    },
    trainRouter: routing.trainRouter,
    stopRouter: routing.stopRouter,
    routerZip: routing.routerZip,
    bakeRouter: routing.bakeRouter,
    renameAdapter: adapters.renameAdapter,
    duplicateAdapter: adapters.duplicateAdapter,
    cutAdapter: adapters.cutAdapter,
    adapterIntruders: adapters.adapterIntruders,
    merge: merging.merge,
    compare: merging.compare,
    mergeReport: merging.mergeReport,
    weightSweep: merging.weightSweep,
    cancelMergeJob: merging.cancelMergeJob,
    extractAdapter: extracting.extractAdapter,
    cancelExtraction: extracting.cancelExtraction,
    adapterEffect: extracting.adapterEffect,
    compressAdapter: sharing.compressAdapter,
    compressionCurve: sharing.compressionCurve,
    rankCurve: sharing.rankCurve,
  };
}

/** The plan and the memory the model took (weights plus the f32 KV cache at full context). */
function describeModel(plan: ModelPlan, model: AdaptedModel): Omit<ModelInfo, 'baseModel'> {
  return {
    name: plan.name,
    config: plan.config,
    parameters: plan.parameters,
    plan,
    where: model.where,
    memoryBytes: model.weightBytes + kvCacheBytes(plan.config),
    weightDTypes: [...model.weightDTypes],
  };
}
