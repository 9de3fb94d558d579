// What a PEFT LoRA adapter holds, as plain JSON (`lora-studio inspect`): its config (ranks,
// alphas, rsLoRA, targets, modules_to_save), every tensor with its stored dtype and non-finite
// count, and per module the scaling and, from diagnostics.ts, ‖ΔW‖_F and effective rank.
// Unlike readPeftAdapter it describes adapters the studio cannot apply (task heads such as
// SEQ_CLS, embedding LoRA, GPT-2's Conv1D layout): inspection only reads. Malformed input is a
// FormatError naming the file and what is wrong.
import { cpuCompute } from '../merge/cpu/compute.ts';
import { compareAdapters, type ModuleDiagnostics } from './diagnostics.ts';
import { FormatError } from '../model/errors.ts';
import { moduleKind, moduleOrder } from '../model/families.ts';
import { READABLE_DTYPES, readSafetensors, type Safetensors } from '../model/safetensors.ts';
import {
  adapterFiles,
  moduleScaling,
  tensorRole,
  WEIGHTS,
  type AdapterConfig,
} from '../adapters/peft-config.ts';
import type { AdapterModule, PeftAdapter } from '../adapters/peft-read.ts';
import { deltaFiguresNote, variantEntry, type VariantName } from '../adapters/variants.ts';

export interface TensorSummary {
  name: string;
  /** As stored: F32, F16, BF16, … */
  dtype: string;
  shape: number[];
  /** NaN and ±Inf values; null for dtypes that are not read (integers, 8-bit floats). */
  nonFinite: number | null;
}

/** One adapted module: its factors and the rank, alpha and scaling PEFT applies to it. */
interface InspectedModule extends AdapterModule {
  alpha: number;
  /** ΔW's shape (out × in); for embedding LoRA, the transpose of the embedding's. */
  out: number;
  in: number;
  /** Factors holding NaN or Inf: no ΔW diagnostics for the module. */
  finite: boolean;
}

/** An adapter's files, parsed and checked, ready to be summarised. */
export interface InspectableAdapter {
  name: string;
  config: AdapterConfig;
  tensors: TensorSummary[];
  /** By module path (`model.layers.0.self_attn.q_proj`). */
  modules: Map<string, InspectedModule>;
  /** Whole tensors (modules_to_save, task heads), by name without PEFT's prefixes. */
  fullTensors: string[];
}

export interface ModuleKindSummary {
  /** The module type: the path's last part (`q_proj`, `c_attn`, `embed_tokens`). */
  kind: string;
  modules: number;
  /** Distinct values over the modules of this kind, ascending. */
  ranks: number[];
  alphas: number[];
  scalings: number[];
}

export interface ModuleSummary {
  path: string;
  rank: number;
  alpha: number;
  /** PEFT's scaling s: ΔW = s·B·A. */
  scale: number;
  out: number;
  in: number;
}

export interface ModuleInspection extends ModuleSummary {
  /** ‖ΔW‖_F; null where ΔW needs the base weights (DoRA) and for factors holding NaN or Inf. */
  norm: number | null;
  /** Fewest singular directions holding 90 % (99 %) of ‖ΔW‖²_F; null as for norm. */
  effectiveRank90: number | null;
  effectiveRank99: number | null;
}

/** Everything inspect reports but the ΔW figures: read from the files alone. */
export interface AdapterSummary {
  name: string;
  format: 'peft-lora';
  /** The adapter variant its config says (DoRA: magnitude vectors rescale the weights' rows). */
  variant: VariantName;
  /** Whether it is DoRA: the field inspect's JSON had before variants, kept for its readers. */
  dora: boolean;
  baseModel: string | null;
  taskType: string | null;
  /** adapter_config.json's r, lora_alpha, rank_pattern, alpha_pattern, use_rslora. */
  r: number;
  loraAlpha: number;
  rankPattern: Record<string, number>;
  alphaPattern: Record<string, number>;
  rslora: boolean;
  /** GPT-2's Conv1D layout: the base weights are stored transposed (the factors are not). */
  fanInFanOut: boolean;
  /** target_modules as the config gives it: a list, a regex or "all-linear". */
  targetModules: unknown;
  /** The module kinds the tensors adapt. */
  targets: string[];
  moduleKinds: ModuleKindSummary[];
  modulesToSave: string[] | null;
  fullTensors: string[];
  tensorCount: number;
  parameterCount: number;
  /** Tensors per stored dtype. */
  dtypes: Record<string, number>;
  /** NaN and ±Inf values over all tensors. */
  nonFinite: number;
  tensors: TensorSummary[];
  modules: ModuleSummary[];
  /** What the figures leave out, in words. */
  notes: string[];
}

export interface AdapterInspection extends Omit<AdapterSummary, 'modules'> {
  modules: ModuleInspection[];
  /** ‖ΔW‖_F over all modules with figures; null when none has any. */
  norm: number | null;
}

function countNonFinite(values: Float32Array): number {
  return values.reduce((n, v) => (Number.isFinite(v) ? n : n + 1), 0);
}

function tensorSummaries(st: Safetensors): TensorSummary[] {
  const readable: readonly string[] = READABLE_DTYPES;
  return [...st.header.tensors.values()].map(({ name, dtype, shape }) => ({
    name,
    dtype,
    shape,
    nonFinite: readable.includes(dtype) ? countNonFinite(st.read(name)) : null,
  }));
}

/** A factor's shape must be 2-D; returns it as [rows, columns]. */
function matrixShape(st: Safetensors, key: string): [number, number] {
  const { shape } = st.header.tensors.get(key)!;
  if (shape.length !== 2)
    throw new FormatError(WEIGHTS, `${key} has shape [${shape.join(', ')}]; a LoRA factor is 2-D`);
  return [shape[0], shape[1]];
}

interface RawFactors {
  a?: string;
  b?: string;
}

/** Sorts the tensors into LoRA factors (by module path) and whole tensors. */
function sortTensors(st: Safetensors): { factors: Map<string, RawFactors>; full: string[] } {
  const factors = new Map<string, RawFactors>();
  const full: string[] = [];
  const entry = (path: string) => factors.get(path) ?? factors.set(path, {}).get(path)!;
  for (const key of st.header.tensors.keys()) {
    const role = tensorRole(key);
    if (role.kind === 'factor') entry(role.path)[role.which === 'A' ? 'a' : 'b'] = key;
    // A variant's vectors (DoRA's magnitudes) are listed with the tensors only.
    else if (role.kind === 'whole') full.push(role.name);
  }
  return { factors, full };
}

function inspectedModule(
  st: Safetensors,
  path: string,
  raw: RawFactors,
  config: AdapterConfig,
): InspectedModule {
  if (!raw.a || !raw.b)
    throw new FormatError(WEIGHTS, `has only one of ${path}'s LoRA factors (A and B)`);
  const [rank, inputs] = matrixShape(st, raw.a);
  const [out, rankOfB] = matrixShape(st, raw.b);
  if (rankOfB !== rank)
    throw new FormatError(WEIGHTS, `${path}: lora_A has rank ${rank} but lora_B ${rankOfB}`);
  const { alpha, scale } = moduleScaling(config, path, rank);
  const a = st.read(raw.a);
  const b = st.read(raw.b);
  return {
    a,
    b,
    rank,
    alpha,
    scale,
    out,
    in: inputs,
    finite: countNonFinite(a) + countNonFinite(b) === 0,
  };
}

/**
 * Parses an adapter's files (adapter_config.json + adapter_model.safetensors, by name) for
 * inspection; refuses a pickled adapter_model.bin without opening it.
 */
export function readForInspection(
  files: ReadonlyMap<string, Uint8Array>,
  name: string,
): InspectableAdapter {
  const { config, weights } = adapterFiles(files, name, { strict: false });
  const st = readSafetensors(weights, WEIGHTS);
  const { factors, full } = sortTensors(st);
  const modules = new Map<string, InspectedModule>();
  for (const path of [...factors.keys()].sort(pathOrder))
    modules.set(path, inspectedModule(st, path, factors.get(path)!, config));
  return { name, config, tensors: tensorSummaries(st), modules, fullTensors: full };
}

function layerOf(path: string): number {
  const match = /\.(\d+)\./.exec(path);
  return match ? Number(match[1]) : Infinity;
}

/** By layer (layerless last), then module kind. */
function pathOrder(x: string, y: string): number {
  return layerOf(x) - layerOf(y) || moduleOrder(moduleKind(x), moduleKind(y)) || x.localeCompare(y);
}

const distinct = (values: number[]) => [...new Set(values)].sort((x, y) => x - y);

function moduleKinds(modules: ReadonlyMap<string, InspectedModule>): ModuleKindSummary[] {
  const byKind = new Map<string, InspectedModule[]>();
  for (const [path, m] of modules) {
    const kind = moduleKind(path);
    byKind.set(kind, [...(byKind.get(kind) ?? []), m]);
  }
  return [...byKind.keys()].sort(moduleOrder).map((kind) => {
    const list = byKind.get(kind)!;
    return {
      kind,
      modules: list.length,
      ranks: distinct(list.map((m) => m.rank)),
      alphas: distinct(list.map((m) => m.alpha)),
      scalings: distinct(list.map((m) => m.scale)),
    };
  });
}

/**
 * ‖ΔW‖_F and effective ranks by compareAdapters on this one adapter, for the modules it can
 * describe: of a variant whose ΔW follows from the factors (not DoRA's), without NaN or Inf.
 */
async function deltaDiagnostics(
  adapter: InspectableAdapter,
): Promise<{ modules: Map<string, ModuleDiagnostics>; norm: number | null }> {
  const fromFactors = variantEntry(adapter.config.variant).deltaFromFactors === true;
  const usable = new Map([...adapter.modules].filter(([, m]) => m.finite && fromFactors));
  if (usable.size === 0) return { modules: new Map(), norm: null };
  // One adapter has no pairs, so nothing dense is formed: the host does it all.
  const comparison = await compareAdapters(cpuCompute, [asPeftAdapter(adapter, usable)]);
  return {
    modules: new Map(comparison.modules.map((m) => [m.path, m])),
    norm: comparison.adapters[0].norm,
  };
}

/** The shape compareAdapters takes: plain LoRA factors, no whole tensors. */
function asPeftAdapter(
  adapter: InspectableAdapter,
  modules: ReadonlyMap<string, AdapterModule>,
): PeftAdapter {
  const { config } = adapter;
  return {
    name: adapter.name,
    baseModel: config.baseModel,
    modules: new Map(modules),
    fullWeights: new Map(),
    details: {
      rank: config.r,
      alpha: config.alpha,
      rslora: config.rslora,
      modules: modules.size,
      targets: [...new Set([...modules.keys()].map(moduleKind))],
      variant: config.variant,
    },
    nonFinite: [],
  };
}

function notes(adapter: InspectableAdapter): string[] {
  const list: string[] = [];
  const variant = deltaFiguresNote(adapter.config.variant);
  if (variant) list.push(variant);
  const broken = [...adapter.modules].filter(([, m]) => !m.finite).map(([path]) => path);
  if (broken.length > 0)
    list.push(`no ΔW figures for modules with NaN or Inf factors: ${broken.join(', ')}`);
  if (adapter.fullTensors.length > 0)
    list.push(`whole tensors stored beside the factors: ${adapter.fullTensors.join(', ')}`);
  return list;
}

function stringList(value: unknown): string[] | null {
  return Array.isArray(value) ? value.map(String) : null;
}

/** What the files say about a parsed adapter; needs no GPU. */
export function summariseAdapter(adapter: InspectableAdapter): AdapterSummary {
  const { config, tensors } = adapter;
  const dtypes: Record<string, number> = {};
  for (const t of tensors) dtypes[t.dtype] = (dtypes[t.dtype] ?? 0) + 1;
  const kinds = moduleKinds(adapter.modules);
  return {
    name: adapter.name,
    format: 'peft-lora',
    variant: config.variant,
    dora: config.variant === 'dora',
    baseModel: config.baseModel,
    taskType: config.taskType,
    r: config.r,
    loraAlpha: config.alpha,
    rankPattern: config.rankPattern,
    alphaPattern: config.alphaPattern,
    rslora: config.rslora,
    fanInFanOut: config.fanInFanOut,
    targetModules: config.raw.target_modules ?? null,
    targets: kinds.map((k) => k.kind),
    moduleKinds: kinds,
    modulesToSave: stringList(config.raw.modules_to_save),
    fullTensors: adapter.fullTensors,
    tensorCount: tensors.length,
    parameterCount: tensors.reduce((n, t) => n + t.shape.reduce((p, d) => p * d, 1), 0),
    dtypes,
    nonFinite: tensors.reduce((n, t) => n + (t.nonFinite ?? 0), 0),
    tensors,
    modules: [...adapter.modules].map(([path, m]) => ({
      path,
      rank: m.rank,
      alpha: m.alpha,
      scale: m.scale,
      out: m.out,
      in: m.in,
    })),
    notes: notes(adapter),
  };
}

/** The summary with ‖ΔW‖ and effective ranks (diagnostics.ts, on the host). */
export async function inspectAdapter(adapter: InspectableAdapter): Promise<AdapterInspection> {
  const summary = summariseAdapter(adapter);
  const deltas = await deltaDiagnostics(adapter);
  return {
    ...summary,
    modules: summary.modules.map((m) => {
      const delta = deltas.modules.get(m.path)?.adapters[0];
      return {
        ...m,
        norm: delta?.norm ?? null,
        effectiveRank90: delta?.effectiveRank90 ?? null,
        effectiveRank99: delta?.effectiveRank99 ?? null,
      };
    }),
    norm: deltas.norm,
  };
}
