// A merge as plain JSON: which adapters with which weights, the method and its parameters. The
// spec is saved with every merged adapter (merge_recipe.json), so any merge can be reproduced
// from its recipe alone. The methods (methods.ts) and their parameters (parameters.ts) are
// described in their tables; resolveSpec checks a spec against them.
import {
  adapterCountText,
  isMergeMethod,
  MERGE_METHODS,
  METHOD_NAMES,
  takesAdapters,
  type MergeMethod,
} from './methods.ts';
import {
  PARAMETER_NAMES,
  parameterProblem,
  SPEC_DEFAULTS,
  type DefaultedParameter,
  type ParameterValues,
} from './parameters.ts';

export {
  adapterCountText,
  MERGE_METHODS,
  METHOD_NAMES,
  reads,
  takesAdapters,
  type MergeMethod,
} from './methods.ts';
export type { MethodFamily } from './methods.ts';
export { SPEC_DEFAULTS, type OutputRank } from './parameters.ts';

/** One source adapter; `weight` may be a gradient over depth (mergekit's lists). */
export interface MergeSource {
  /** Library id (browser) or folder (CLI): what the recipe names. */
  id: string;
  weight: number | number[];
  /** This adapter's density, where it differs from the spec's (mergekit's per-model density). */
  density?: number;
}

/** Multipliers per layer and module type, applied to the merged ΔW. */
export interface LayerGrid {
  /** Module types (names such as q_proj, or attn.c_proj for GPT-2), in the grid's column order. */
  modules: string[];
  /** weights[layer][column]. */
  weights: number[][];
}

/** The method's parameters (parameters.ts) beside the adapters and the options every method has. */
export interface MergeSpec extends Partial<ParameterValues> {
  method: MergeMethod;
  adapters: MergeSource[];
  /** Clamp the output factors to this quantile of their absolute values (kohya, PEFT's `clamp`). */
  clamp?: number;
  layerGrid?: LayerGrid;
  /** LiNeS depth scaling of the merged ΔW: λ(ℓ) = alpha + beta·ℓ/(L−1). */
  lines?: { alpha: number; beta: number };
}

/** The spec with every parameter the method reads filled in: what the recipe records. */
export type ResolvedSpec = MergeSpec & Required<Pick<MergeSpec, DefaultedParameter>>;

function check(ok: boolean, message: string): asserts ok {
  if (!ok) throw new RangeError(`merge: ${message}`);
}

function problem(message: string | null): void {
  if (message !== null) throw new RangeError(`merge: ${message}`);
}

/** A spec without its adapters: the method, its parameters and the options every method has. */
export type MergeOptions = Omit<MergeSpec, 'adapters'>;

/** Checks a spec (from JSON, YAML or the UI) and fills in the defaults; errors say what to fix. */
export function resolveSpec(spec: MergeSpec): ResolvedSpec {
  const resolved = resolveOptions(spec);
  check(spec.adapters.length > 0, 'no adapters given');
  check(
    takesAdapters(spec.method, spec.adapters.length),
    `${spec.method} merges ${adapterCountText(spec.method)}`,
  );
  for (const a of spec.adapters) {
    const ws = typeof a.weight === 'number' ? [a.weight] : a.weight;
    check(
      ws.length > 0 && ws.every(Number.isFinite),
      `${a.id}'s weight must be a number or a list of numbers`,
    );
    if (a.density !== undefined) problem(parameterProblem('density', a.density));
  }
  return { ...resolved, adapters: spec.adapters };
}

/**
 * Checks the method and options of a spec whose adapters are not known yet (a shared
 * composition's, before its adapters are downloaded) and fills in the defaults.
 */
export function resolveOptions<T extends MergeOptions>(
  options: T,
): T & Required<Pick<MergeSpec, DefaultedParameter>> {
  check(
    isMergeMethod(options.method),
    `unknown method "${options.method}"; one of ${METHOD_NAMES.join(', ')}`,
  );
  const r = { ...SPEC_DEFAULTS, ...options };
  // Every parameter, read or not: the recipe records them all.
  for (const name of PARAMETER_NAMES) problem(parameterProblem(name, r[name]));
  problem(MERGE_METHODS[options.method].check?.(r) ?? null);
  if (r.clamp !== undefined)
    check(r.clamp > 0 && r.clamp <= 1, `clamp is a quantile in (0, 1], got ${r.clamp}`);
  if (r.layerGrid)
    check(
      r.layerGrid.weights.every(
        (row) => row.length === r.layerGrid!.modules.length && row.every(Number.isFinite),
      ),
      'every layer of the grid needs one number per module type',
    );
  if (r.lines)
    check(
      Number.isFinite(r.lines.alpha) && Number.isFinite(r.lines.beta),
      'LiNeS needs numbers alpha and beta',
    );
  return r;
}

/**
 * A weight at layer ℓ of L: a number, or a gradient list spread evenly over depth and linearly
 * interpolated between its points (mergekit's convention).
 */
export function weightAt(
  weight: number | readonly number[],
  layer: number,
  layers: number,
): number {
  if (typeof weight === 'number') return weight;
  if (weight.length === 1 || layers <= 1) return weight[0];
  const x = (layer / (layers - 1)) * (weight.length - 1);
  const i = Math.min(Math.floor(x), weight.length - 2);
  return weight[i] + (x - i) * (weight[i + 1] - weight[i]);
}

/** The multiplier the grid and LiNeS give module type `module` at layer ℓ of L. */
export function outputScale(
  spec: MergeSpec,
  layer: number,
  module: string,
  layers: number,
): number {
  let scale = 1;
  if (spec.layerGrid) {
    const column = spec.layerGrid.modules.indexOf(module);
    const row = spec.layerGrid.weights.at(layer);
    if (column >= 0 && row) scale *= row[column];
  }
  if (spec.lines) scale *= spec.lines.alpha + (spec.lines.beta * layer) / Math.max(1, layers - 1);
  return scale;
}

export type GridPreset = 'uniform' | 'ramp_up' | 'ramp_down' | 'attention_only' | 'mlp_only';
export const GRID_PRESETS: readonly GridPreset[] = [
  'uniform',
  'ramp_up',
  'ramp_down',
  'attention_only',
  'mlp_only',
];

/** A layer × module grid: ramps go 0 → 1 (or 1 → 0) over depth; the only-presets zero the rest. */
export function gridPreset(
  preset: GridPreset,
  layers: number,
  modules: readonly string[],
  isAttention: (module: string) => boolean,
): LayerGrid {
  const weights = Array.from({ length: layers }, (_, l) => {
    const depth = layers > 1 ? l / (layers - 1) : 1;
    return modules.map((m) => {
      if (preset === 'ramp_up') return depth;
      if (preset === 'ramp_down') return 1 - depth;
      if (preset === 'attention_only') return isAttention(m) ? 1 : 0;
      if (preset === 'mlp_only') return isAttention(m) ? 0 : 1;
      return 1;
    });
  });
  return { modules: [...modules], weights };
}
