// The contract between the UI and the worker that owns the GPU. The UI imports only
// this file (types) and the client; everything behind it runs in the worker.
export type { AdapterReport } from '../gpu/device.ts';
export type { SelfCheckResult } from '../linalg/self-check.ts';
import type { AdapterReport } from '../gpu/device.ts';
import type { DType } from '../gpu/tensor.ts';
import type { NamedProblem } from '../linalg/matmul-tuning.ts';
import type { SelfCheckResult } from '../linalg/self-check.ts';
import type { ModelConfig } from '../model/config.ts';
import { exampleConfig } from '../model/families.ts';
export { isAttentionKind } from '../model/families.ts';
import type { GenerateOptions } from '../model/generate.ts';
import type { DownloadProgress } from '../model/hub.ts';
import type { WeightMemory } from '../model/memory.ts';
import type { WeightPrecision } from '../model/weights.ts';
import type { LossReport } from '../train/evaluate.ts';
import type { RoutePoint } from '../routing/train.ts';
import type { LibraryItem } from '../adapters/library.ts';
import type { ModuleIntrusion } from '../analysis/intruder-settings.ts';
import type { AdapterComparison } from '../analysis/diagnostics.ts';
import type { EmbeddingChoice, HeadChoice } from '../adapters/extract.ts';
import type { LossCell, MergeReport, SweepPoint } from '../merge/report.ts';
import type { MergeSpec } from '../merge/spec.ts';
import type { HubRef } from '../hub/repo-id.ts';
import type { DatasetSummary } from '../train/data.ts';
import type { TargetName } from '../handoff/targets.ts';
import type { DataOptions } from '../train/run-store.ts';
import type {
  HistoryPoint,
  Sample,
  TrainConfig,
  TrainProgress,
  TrainResult,
} from '../train/trainer.ts';

export type { ModelConfig, GenerateOptions, LossReport, DownloadProgress, HubRef };
export type { WeightMemory, WeightPrecision };
export { WEIGHT_PRECISIONS } from '../model/weights.ts';
export { CURVE_DENSITIES } from '../adapters/compeft.ts';
export { kvCacheBytes, optimiserBytes, trainingActivationBytes } from '../model/memory.ts';
export type {
  DataOptions,
  DatasetSummary,
  HistoryPoint,
  LibraryItem,
  Sample,
  TrainConfig,
  TrainProgress,
};
export type { AdapterComparison, MergeReport, MergeSpec, SweepPoint, RoutePoint };
export { ROUTING_MODES, routingMode } from '../routing/modes.ts';
export type { LayerGrid, MergeMethod, MergeOptions, GridPreset } from '../merge/spec.ts';
export { GRID_PRESETS, gridPreset, resolveOptions } from '../merge/spec.ts';
export { parseMergekitYaml, writeMergekitYaml, type WrittenYaml } from '../merge/mergekit.ts';
export type { MethodFamily } from '../merge/methods.ts';
export {
  adapterCountText,
  isMergeMethod,
  MERGE_METHODS,
  METHOD_NAMES,
  reads,
  takesAdapters,
} from '../merge/methods.ts';
export type {
  ChoiceParameterName,
  DefaultedParameter,
  NumberParameterName,
  ParameterDefinition,
  ParameterName,
  ParameterValues,
} from '../merge/parameters.ts';
export {
  intervalText,
  MERGE_PARAMETERS,
  PARAMETER_NAMES,
  SPEC_DEFAULTS,
} from '../merge/parameters.ts';
export type { LoraSpec, InitMethod, VariantName } from '../adapters/config.ts';
export { nextFreeSlice, TARGET_PRESETS } from '../adapters/config.ts';
export { DEFAULT_BASIS, INITS, initChoice, initEntry, takesBasis } from '../adapters/inits.ts';
export { DEFAULT_DENSITY } from '../adapters/s2ft.ts';
export { PLAIN_VARIANT, VARIANTS, variantEntry } from '../adapters/variants.ts';
export { DEFAULT_SETTINGS } from '../train/settings.ts';
export { resolveTargets } from '../model/architecture.ts';

/** The linear modules of a layer of the model (a Llama's before any model is loaded). */
export function modelModules(config: ModelConfig | undefined): string[] {
  return (config ?? exampleConfig('llama')).arch.modules.map((m) => m.name);
}

/** How a training run ended; the adapter (when any step was taken) is in the library. */
export type TrainingOutcome = Omit<TrainResult, 'adapter'> & { adapterId: string | null };

/** A run saved in the browser that a reload can continue. */
export interface SavedRunInfo {
  baseModel: string;
  fileName: string;
  step: number;
  totalSteps: number;
  savedAt: number;
  config: TrainConfig;
  history: HistoryPoint[];
  /** Whether the loaded model is the one the run trains. */
  matchesModel: boolean;
}

export type { TargetName };
export { TARGET_NAMES, TARGETS } from '../handoff/targets.ts';

/** A setting of a run that an engine cannot say, and why (spellRun's `lost`). */
export interface LostSetting {
  setting: string;
  why: string;
}

/** The run the Train panel can export for another engine: the latest with a checkpoint. */
export interface RunHandoffInfo {
  /** The run's name (the zip's is made from it and the engine's). */
  name: string;
  /** The base as the run names it. */
  baseModel: string;
  /** The Hub repo the exported configs load; null where the base was a local file. */
  modelId: string | null;
  step: number;
  totalSteps: number;
  /** What each engine cannot express of the run (its export's README lists them too). */
  lost: Record<TargetName, LostSetting[]>;
}

/**
 * A model read from its files, before its weights go to the GPU: what they take at each
 * precision the studio can keep them in, and what the device allows.
 */
export interface ModelPlan {
  name: string;
  config: ModelConfig;
  parameters: number;
  /** The precision it is being loaded at. */
  precision: WeightPrecision;
  /** Its weights at every precision in WEIGHT_PRECISIONS, in that order. */
  weights: WeightMemory[];
  /** The most bytes one GPU buffer may hold; null where the model runs on the CPU. */
  bufferLimit: number | null;
}

/** What the studio shows about a loaded model. */
export interface ModelInfo {
  name: string;
  /** What an adapter trained on it names as its base: the Hub repo where one is known. */
  baseModel: string;
  config: ModelConfig;
  parameters: number;
  /** The plan it was loaded by (its memory at every precision). */
  plan: ModelPlan;
  /** Where it runs: on the GPU, or on the CPU reference forward where WebGPU is missing. */
  where: 'gpu' | 'cpu';
  /** Memory for weights and KV cache, in bytes (on the GPU, or in the worker on the CPU). */
  memoryBytes: number;
  /** The dtypes the weights are kept in on the GPU, most bytes first (the KV cache is f32). */
  weightDTypes: DType[];
}

export interface GenerationResult {
  /** The prompt and its continuation, decoded. */
  text: string;
  newTokens: number;
  /** Wall time of the whole generation (prefill and decode). */
  ms: number;
  /**
   * Generated through a router: the adapters it routes between, the prompt as decoded, and each
   * new token's text with the adapter its gates chose — averaged over the modules, and per layer
   * (−1 where a layer routes nothing).
   */
  routing?: {
    experts: string[];
    prompt: string;
    tokens: { text: string; expert: number; layers: number[] }[];
  };
}

/** A router to train between library adapters (src/routing/), on their eval texts. */
export interface RouteRequest {
  /** Library ids, in board order. */
  adapters: string[];
  /** Each adapter's eval text: three quarters train the router, a quarter measures it. */
  texts: EvalText[];
  /** Learned scales or token routing (the modes that route between adapters). */
  mode: 'scales' | 'token';
  /** Adapters per token (0: all, softly). */
  topK: number;
  steps: number;
  lr: number;
}

/** A trained router's measurements on each eval text's held-out part. */
export interface RouteOutcome {
  experts: { id: string; name: string }[];
  rows: {
    id: string;
    name: string;
    base: number | null;
    routed: number | null;
    /** Token routing: the share of the text's tokens whose gates chose its own adapter. */
    ownShare: number | null;
  }[];
  /** Learned scales: one weight per adapter. */
  scales: number[] | null;
  /** Token routing: the mean gate per layer and adapter on the held-out texts. */
  layerUsage: number[][] | null;
  history: RoutePoint[];
}

/** Why training is refused where the studio runs on the CPU (the UI says it before anyone asks). */
export const TRAINING_NEEDS_WEBGPU =
  'Training needs WebGPU, which this browser does not offer. On the CPU the studio loads models, generates, and imports, inspects, compares and merges adapters, but does not train. The WebGPU panel says how to turn it on.';

/** Why WebGPU cannot be used, each with its own advice in the UI. */
export type UnavailableReason = 'no-webgpu' | 'insecure-context' | 'no-adapter' | 'device-failed';

/**
 * `ready`: a WebGPU device. `cpu`: none could be had (the reason says why), so the studio runs
 * on the CPU references: models, adapters and merges work, slower; training does not.
 * `lost`: the device was lost; reconnect.
 */
export type GpuStatus =
  | { state: 'ready'; adapter: AdapterReport }
  | { state: 'cpu'; reason: UnavailableReason; detail: string }
  | { state: 'lost'; reason: string; detail: string };

/** A library adapter with held-out text in its style, for the merge report. */
/** One compression of an adapter (ComPEFT at a density): its size and what it costs. */
export interface CompressionPoint {
  density: number;
  bytes: number;
  /** adapter_model.safetensors's bytes over the compressed file's. */
  ratio: number;
  alpha: number;
  /** ‖ΔW − ΔW̃‖ / ‖ΔW‖ over all modules. */
  deltaError: number;
  /** Perplexity on the eval text with the adapter and with its compressed form. */
  perplexity: { original: number; compressed: number } | null;
}

/** A DyLoRA adapter cut to one rank: its size and what it costs. */
export interface RankPoint {
  rank: number;
  /** adapter_model.safetensors's bytes. */
  bytes: number;
  /** Perplexity on the eval text, when there is one. */
  perplexity: number | null;
}

export interface EvalText {
  id: string;
  text: string;
}

/** How applyAdapters' refusal of an adapter's numbers ends: the UI offers to apply it anyway. */
export const UNAPPLIABLE = 'not applied (its output would be NaN)';

export type { EmbeddingChoice, HeadChoice } from '../adapters/extract.ts';
export { EMBEDDING_CHOICES, HEAD_CHOICES } from '../adapters/extract.ts';
export type { LossCell } from '../merge/report.ts';
export type { ModuleIntrusion } from '../analysis/intruder-settings.ts';
export { INTRUDER_DEFAULTS } from '../analysis/intruder-settings.ts';

/** A checkpoint the user dropped or picked for extraction: its files, paths as in the drop. */
export interface CheckpointFiles {
  /** What the studio calls it: the folder's or the file's name. */
  name: string;
  files: { path: string; file: File }[];
}

/** How extractAdapter turns W_tuned − W_base into a LoRA. */
export interface ExtractSettings {
  /** A fixed rank, or the smallest rank keeping a share of ‖ΔW‖² (at most `max`). */
  rule: number | { energy: number; max: number };
  /** Modules or keywords (`all-linear`, `attention`) to extract. */
  targets: string[];
  /** skip; lora: an embedding LoRA of ΔE; save: the whole tuned table (modules_to_save). */
  embeddings: EmbeddingChoice;
  /** An untied output head: skip, or save it whole (modules_to_save). */
  head: HeadChoice;
  /** The library name (default "<tuned> − <base>"). */
  name?: string;
}

/** One extracted module, placed in the layer × module grid. */
export interface ExtractedModuleReport {
  path: string;
  /** Null for the embedding. */
  layer: number | null;
  /** The module type (q_proj), or the embedding's name. */
  module: string;
  rank: number;
  /** ‖ΔW‖_F, the share of ‖ΔW‖² the rank keeps, and ‖ΔW‖ / ‖W_base‖. */
  norm: number;
  energy: number;
  relative: number;
}

/** What extractAdapter made: the library item and the energy report. */
export interface ExtractionOutcome {
  item: LibraryItem;
  base: string;
  tuned: string;
  numLayers: number;
  /** The grid's columns: the module types extracted, in the architecture's order. */
  moduleTypes: string[];
  modules: ExtractedModuleReport[];
  /** The share of ‖ΔW‖² kept over all extracted modules. */
  energy: number;
  /** Weights saved whole (modules_to_save). */
  saved: string[];
  /** Weights the fine-tune changed that the adapter does not carry, with ‖ΔW‖ / ‖W_base‖. */
  notCarried: { name: string; relative: number }[];
}

/** The loaded model's loss on a text without and with an adapter (weight 1). */
export interface AdapterEffect {
  model: string;
  adapter: string;
  /** Predicted tokens the losses average over. */
  tokens: number;
  before: LossCell;
  after: LossCell;
}

export interface StudioApi {
  /** Acquires the GPU. `onStatus` hears later changes (device lost, reconnected). */
  connect(onStatus: (status: GpuStatus) => void): Promise<GpuStatus>;
  /** Re-acquires the device after a loss. */
  reconnect(): Promise<GpuStatus>;
  /** Runs the kernels on the GPU and compares them with their CPU references. */
  selfCheck(): Promise<SelfCheckResult[]>;
  /**
   * Measures the matmul strategies on this GPU for the given problems (default: squares and
   * LoRA-layer shapes) and keeps the fastest, also for later sessions.
   */
  tuneMatmul(problems?: readonly NamedProblem[]): Promise<{ problem: string; tile: string }[]>;
  /**
   * Loads the built-in stories260K model (shipped with the app: no network). Every load keeps
   * the weights at `precision` (default `file`: as stored) and tells `onPlan` what they take
   * before uploading them; a model whose largest buffer the device cannot hold is refused then.
   */
  loadBuiltinModel(
    precision?: WeightPrecision,
    onPlan?: (plan: ModelPlan) => void,
  ): Promise<ModelInfo>;
  /**
   * Loads a model from files the user chose or dropped: an HF folder (config.json, safetensors,
   * tokenizer.json), a llama.cpp .gguf or a llama2.c checkpoint with its tokenizer. Replaces the
   * loaded model.
   */
  loadModelFiles(
    files: readonly File[],
    name: string,
    precision?: WeightPrecision,
    onPlan?: (plan: ModelPlan) => void,
  ): Promise<ModelInfo>;
  /**
   * Downloads a model from the Hugging Face Hub by repo id (`HuggingFaceTB/SmolLM2-135M`) through
   * the browser's cache; `baseUrl` replaces https://huggingface.co (tests use a local server).
   */
  loadModelFromHub(
    repo: string,
    baseUrl?: string,
    onProgress?: (p: DownloadProgress) => void,
    precision?: WeightPrecision,
    onPlan?: (plan: ModelPlan) => void,
  ): Promise<ModelInfo>;
  /** Loads the last model loaded (or refused) again, its weights at another precision. */
  reloadModel(precision: WeightPrecision, onPlan?: (plan: ModelPlan) => void): Promise<ModelInfo>;
  unloadModel(): Promise<void>;
  /** Mean next-token loss of `text` under the loaded model. */
  perplexity(text: string): Promise<LossReport>;
  /**
   * Continues `prompt` with the loaded model; `onText` hears the text so far after every new
   * token (decoded whole, so multi-byte characters arrive intact).
   */
  generate(
    prompt: string,
    options: GenerateOptions,
    onText?: (text: string) => void,
  ): Promise<GenerationResult>;

  /**
   * Trains a router between library adapters on their eval texts (docs/routing.md) with a point
   * of the curves after every step; the router then stays applied — generate goes through it and
   * says which adapter each token's gates chose — until adapters are applied again.
   */
  trainRouter(
    request: RouteRequest,
    onProgress?: (point: RoutePoint, totalSteps: number) => void,
  ): Promise<RouteOutcome>;
  /** Stops a router's training after its current step. */
  stopRouter(): Promise<void>;
  /**
   * The applied router as a folder in a zip: router.json and router.safetensors with its
   * adapters under experts/ (each checked by its hash), which `lora-studio … --router` loads.
   */
  routerZip(): Promise<{ name: string; bytes: Uint8Array }>;
  /**
   * The applied router baked into one plain LoRA in the library (src/routing/bake.ts): each
   * module's gates replaced by their mean over the eval texts; with the held-out loss routed and
   * baked, what the per-token choice was worth.
   */
  bakeRouter(
    name: string,
  ): Promise<{ item: LibraryItem; routedLoss: number | null; bakedLoss: number | null }>;

  /** Parses, tokenizes, splits and packs a dataset for the loaded model; keeps it for training. */
  prepareData(
    content: string,
    fileName: string,
    options: DataOptions,
    /** Examples tokenized of all, now and then. */
    onProgress?: (done: number, total: number) => void,
  ): Promise<DatasetSummary>;
  /**
   * Trains an adapter on the prepared dataset; resolves when the run ends (done, stopped or
   * failed). Checkpoints go to the browser's run store; the adapter lands in the library.
   */
  startTraining(
    config: TrainConfig,
    onProgress?: (p: TrainProgress) => void,
  ): Promise<TrainingOutcome>;
  pauseTraining(): Promise<void>;
  resumeTraining(): Promise<void>;
  /** Stops after the current step, saving a checkpoint. */
  stopTraining(): Promise<void>;
  /** The run a reload can continue, if any. */
  savedRun(): Promise<SavedRunInfo | null>;
  /** Continues the saved run (its model must be loaded): the same curve, the same result. */
  resumeSavedRun(onProgress?: (p: TrainProgress) => void): Promise<TrainingOutcome>;
  discardSavedRun(): Promise<void>;
  /**
   * The latest run with a checkpoint (finished in this session, or stopped, failed or saved
   * before a reload) as an export for another engine would hand it off; null when there is none
   * or a run is in progress.
   */
  exportableRun(): Promise<RunHandoffInfo | null>;
  /**
   * That run as `lora-studio export-run --to TARGET` writes it (data/, the engine's config,
   * README.md), zipped in a folder named `<run>-<target>` as the zip is. `modelId` names the
   * base's Hub repo where the run's base was a local file (blank: the README's placeholder).
   * The zip's buffer is transferred.
   */
  exportRun(target: TargetName, modelId?: string): Promise<{ name: string; bytes: Uint8Array }>;
  /** The library, newest first, each item saying whether it fits the loaded model. */
  listAdapters(): Promise<LibraryItem[]>;
  /**
   * Adds an adapter the user dropped: its files (the two PEFT files, a folder's files with their
   * paths, or one .zip holding them, possibly in a subfolder). Validated against the loaded model
   * when there is one: a shape mismatch is refused unless `force`. Named `name`, else after its
   * folder or zip.
   */
  importAdapter(
    files: { name: string; bytes: Uint8Array }[],
    options?: { force?: boolean; name?: string },
  ): Promise<{ item: LibraryItem; warnings: string[] }>;
  /**
   * Adds the PEFT adapter a Hub repo holds at a revision (main when none), through the Hub
   * downloads' cache; `baseUrl` replaces https://huggingface.co. An adapter the library already
   * holds from that repo at that commit is not downloaded again (`reused`). Checked against the
   * loaded model as a drop is.
   */
  importAdapterFromHub(
    ref: HubRef,
    options?: { force?: boolean; baseUrl?: string },
    onProgress?: (p: DownloadProgress) => void,
  ): Promise<{ item: LibraryItem; warnings: string[]; reused: boolean }>;
  /** The whole library as one zip: a folder per adapter and library.json (the buffer is transferred). */
  libraryZip(): Promise<{ name: string; bytes: Uint8Array }>;
  /**
   * Adds every adapter of a library zip, with its name, origin, time and Hub ref, kept even where
   * it does not fit the loaded model; refuses a zip that is not a library export in one line.
   */
  restoreLibrary(bytes: Uint8Array, fileName: string): Promise<{ names: string[] }>;
  /** Records where a library adapter is on the Hub (after a push): a link can then name it. */
  setAdapterHub(id: string, ref: HubRef): Promise<LibraryItem>;
  renameAdapter(id: string, name: string): Promise<LibraryItem>;
  /** A copy under a new id ("name (copy)"), e.g. to keep a version before re-training. */
  duplicateAdapter(id: string): Promise<LibraryItem>;
  /**
   * A DyLoRA-trained adapter cut to a smaller rank (src/adapters/truncate.ts), added to the
   * library beside it as "NAME · rank B".
   */
  cutAdapter(id: string, rank: number): Promise<LibraryItem>;
  /**
   * The adapter's intruder dimensions against the loaded model's weights, per module
   * (src/analysis/intruders.ts): the loaded model must be the adapter's base.
   */
  adapterIntruders(
    id: string,
    onProgress?: (done: number, total: number) => void,
  ): Promise<ModuleIntrusion[]>;
  /**
   * Applies library adapters to the loaded model at run time, W x + Σ wᵢ·sᵢ·Bᵢ·Aᵢ·x (an empty
   * list: the base model); generate and perplexity use the composition. Refuses, leaving the
   * current composition, an adapter that does not fit the model.
   */
  /**
   * Applies adapters at these weights; one whose numbers cannot be applied (NaN, Inf, a scaling
   * beyond float32) is refused, its message ending in UNAPPLIABLE, unless its id is in `force`.
   */
  applyAdapters(
    active: { id: string; weight: number }[],
    options?: { force?: readonly string[] },
  ): Promise<void>;
  /** The adapter's PEFT files, for download. */
  adapterFiles(id: string): Promise<{ name: string; bytes: Uint8Array }[]>;
  /** The adapter as one zip (its files in a folder named after it), for download and sharing. */
  adapterZip(id: string): Promise<{ name: string; bytes: Uint8Array }>;
  /**
   * The adapter as a llama.cpp GGUF LoRA (`llama-cli --lora FILE.gguf`). Needs the loaded model,
   * which it must fit: llama.cpp's q_proj / k_proj rows are permuted by its head counts.
   */
  adapterGguf(id: string): Promise<{ name: string; bytes: Uint8Array }>;
  removeAdapter(id: string): Promise<void>;

  /**
   * Bakes a merge (spec.adapters name library ids) into a new library adapter called `name`,
   * with merge_recipe.json and a model card among its files.
   */
  merge(
    spec: MergeSpec,
    name: string,
    onProgress?: (done: number, total: number) => void,
  ): Promise<{ item: LibraryItem; lostEnergy: number }>;
  /** Similarity diagnostics between library adapters (cosines, subspace overlap, sign conflicts). */
  compare(ids: string[]): Promise<AdapterComparison>;
  /**
   * Losses of the base, each source alone and the merged adapter on each source's eval text,
   * with the share of each source's improvement the merge keeps. Needs the loaded model.
   */
  mergeReport(
    mergedId: string,
    texts: EvalText[],
    onProgress?: (done: number, total: number) => void,
  ): Promise<MergeReport>;
  /**
   * A library adapter compressed for sharing (ComPEFT at `density`, docs/sharing.md): the file
   * (`NAME.compeft`, imported back like any adapter) with its size and ΔW error, and with an
   * eval text (the loaded model must be the adapter's) the perplexity with the adapter and with
   * what the file restores, α chosen by that perplexity.
   */
  compressAdapter(
    id: string,
    density: number,
    evalText: string | null,
  ): Promise<CompressionPoint & { name: string; file: Uint8Array }>;
  /** The same at every density of a size/quality curve, without the files. */
  compressionCurve(
    id: string,
    evalText: string | null,
    onProgress?: (done: number, total: number) => void,
  ): Promise<CompressionPoint[]>;
  /**
   * What cutting a DyLoRA-trained adapter to each rank 1…r gives: the weights' size and, with an
   * eval text (the loaded model must be the adapter's), the perplexity.
   */
  rankCurve(
    id: string,
    evalText: string | null,
    onProgress?: (done: number, total: number) => void,
  ): Promise<RankPoint[]>;
  /** Stops the running merge, report or sweep at its next step; it then rejects with "Cancelled.". */
  cancelMergeJob(): Promise<void>;
  /** Losses on each eval text of Σ w·ΔWᵢ at run time, for each weight w. */
  weightSweep(
    texts: EvalText[],
    weights: number[],
    onProgress?: (done: number, total: number) => void,
  ): Promise<SweepPoint[]>;

  /**
   * A LoRA extracted from two checkpoints of one architecture (a base and its full fine-tune, each
   * an HF folder or a .gguf): per module the truncated SVD of W_tuned − W_base, read a weight
   * pair at a time. Added to the library with extraction.json; refused in one line where the
   * files are no model, a PyTorch pickle, or two architectures.
   */
  extractAdapter(
    base: CheckpointFiles,
    tuned: CheckpointFiles,
    settings: ExtractSettings,
    onProgress?: (done: number, total: number) => void,
  ): Promise<ExtractionOutcome>;
  /** Stops the running extraction at its next weight; it then rejects with "Cancelled.". */
  cancelExtraction(): Promise<void>;
  /**
   * The loaded model's loss on `text` (read as a dataset file named `fileName`) without and with
   * a library adapter at weight 1; the adapters applied to the model stay as they are.
   */
  adapterEffect(id: string, text: string, fileName?: string): Promise<AdapterEffect>;
}
