// A merge as plain JSON: which adapters with which weights, the method and its parameters. The
// spec is saved with every merged adapter (merge_recipe.json), so any merge can be reproduced
// from its recipe alone. The method table below is the one place methods are described; the
// docs' table and the UI's help text come from it.

/** How a method combines the adapters' ΔW = s·B·A. */
export type MethodFamily =
  /** On the low-rank factors, never forming m×n: exact, unless the method itself approximates (LoRA-LEGO's clusters). */
  | 'exact'
  /** PEFT's combination of A and B separately: B·A holds cross terms no adapter had. */
  | 'factor'
  /** Entrywise on the dense ΔW of each module, then SVD back to the output rank. */
  | 'dense';

/** The parameters a method reads (besides weights); the UI shows only these. */
export type MethodParameter =
  | 'density'
  | 'majoritySign'
  | 'tiesDivisor'
  | 'gamma'
  | 'epsilon'
  | 't'
  | 'opcmAlpha'
  | 'seed'
  | 'rank';

export interface MethodInfo {
  family: MethodFamily;
  /** PEFT's add_weighted_adapter has this combination type, with this meaning. */
  peft: boolean;
  parameters: readonly MethodParameter[];
  /** One line for the method table and the UI. */
  summary: string;
}

const SVD_RANK: MethodParameter[] = ['rank'];
const TIES: MethodParameter[] = ['density', 'majoritySign', 'tiesDivisor'];

export const MERGE_METHODS = {
  cat: {
    family: 'exact',
    peft: true,
    parameters: [],
    summary: 'Factors side by side: ΔW = Σ wᵢΔWᵢ exactly, at rank Σ rᵢ.',
  },
  svd: {
    family: 'exact',
    peft: true,
    parameters: SVD_RANK,
    summary: 'Σ wᵢΔWᵢ brought to rank k by its SVD (the best rank-k approximation).',
  },
  task_arithmetic: {
    family: 'exact',
    peft: false,
    parameters: SVD_RANK,
    summary:
      'Σ wᵢΔWᵢ with any real weights (negative ones remove a behaviour); exact at rank Σ rᵢ, or SVD to k.',
  },
  linear: {
    family: 'factor',
    peft: true,
    parameters: [],
    summary: 'PEFT-compatible: A and B averaged separately. Approximate: cross terms Bᵢ·Aⱼ.',
  },
  ties: {
    family: 'factor',
    peft: true,
    parameters: TIES,
    summary: 'PEFT-compatible TIES on A and B separately. Approximate: cross terms.',
  },
  dare_linear: {
    family: 'factor',
    peft: true,
    parameters: ['density', 'seed'],
    summary: 'PEFT-compatible DARE on A and B separately. Approximate: cross terms.',
  },
  dare_ties: {
    family: 'factor',
    peft: true,
    parameters: ['density', 'majoritySign', 'tiesDivisor', 'seed'],
    summary: 'PEFT-compatible DARE + TIES on A and B separately. Approximate: cross terms.',
  },
  magnitude_prune: {
    family: 'factor',
    peft: true,
    parameters: ['density'],
    summary: 'PEFT-compatible magnitude pruning on A and B separately. Approximate: cross terms.',
  },
  ties_svd: {
    family: 'dense',
    peft: true,
    parameters: [...TIES, 'rank'],
    summary:
      'TIES on ΔW: keep the top density share by magnitude, elect a sign per entry, average the agreeing entries.',
  },
  dare_linear_svd: {
    family: 'dense',
    peft: true,
    parameters: ['density', 'seed', 'rank'],
    summary: 'DARE on ΔW: keep each entry with probability density, rescale by 1/density, sum.',
  },
  dare_ties_svd: {
    family: 'dense',
    peft: true,
    parameters: ['density', 'majoritySign', 'tiesDivisor', 'seed', 'rank'],
    summary: 'DARE on ΔW, then TIES sign election and disjoint mean.',
  },
  magnitude_prune_svd: {
    family: 'dense',
    peft: true,
    parameters: ['density', 'rank'],
    summary: 'Keep the top density share of each ΔW by magnitude, sum.',
  },
  breadcrumbs_svd: {
    family: 'dense',
    peft: false,
    parameters: ['density', 'gamma', 'rank'],
    summary:
      'Model Breadcrumbs: drop the gamma share of largest entries (outliers) and the smallest, keeping density; sum.',
  },
  della_svd: {
    family: 'dense',
    peft: false,
    parameters: ['density', 'epsilon', 'majoritySign', 'tiesDivisor', 'seed', 'rank'],
    summary:
      'DELLA: keep with probability density ± epsilon by magnitude rank in each row, rescale by 1/p, then TIES.',
  },
  slerp: {
    family: 'exact',
    peft: false,
    parameters: ['t', 'rank'],
    summary:
      'Spherical interpolation between two adapters’ ΔW per module (t = 0 → first, 1 → second); exact.',
  },
  lora_lego: {
    family: 'exact',
    peft: false,
    parameters: ['rank', 'seed'],
    summary:
      'LoRA-LEGO: k-means over all rank-1 units (bⱼ, aⱼ) into k clusters; the centroids form a rank-k adapter, rescaled to the sum’s norm.',
  },
  opcm: {
    family: 'exact',
    peft: false,
    parameters: ['opcmAlpha', 'rank'],
    summary:
      'OPCM: adapters added in order, each projected off the subspaces already merged, norm-rescaled; exact.',
  },
} as const satisfies Record<string, MethodInfo>;

export type MergeMethod = keyof typeof MERGE_METHODS;
export const METHOD_NAMES = Object.keys(MERGE_METHODS) as MergeMethod[];

/** One source adapter; `weight` may be a gradient over depth (mergekit's lists). */
export interface MergeSource {
  /** Library id (browser) or folder (CLI): what the recipe names. */
  id: string;
  weight: number | number[];
  /** This adapter's density, where it differs from the spec's (mergekit's per-model density). */
  density?: number;
}

/** The output rank: a fixed k, or per module the smallest k keeping a share of ‖ΔW‖²_F. */
export type OutputRank = number | { energy: number; max?: number };

/** Multipliers per layer and module type, applied to the merged ΔW. */
export interface LayerGrid {
  /** Module types, in the order of the grid's columns (e.g. LINEAR_MODULES). */
  modules: string[];
  /** weights[layer][column]. */
  weights: number[][];
}

export interface MergeSpec {
  method: MergeMethod;
  adapters: MergeSource[];
  /** Share of entries kept by the sparsifying methods (PEFT's `density`), 0 < d ≤ 1. */
  density?: number;
  /** TIES sign election: sum of values (PEFT's `total`) or of signs (`frequency`). */
  majoritySign?: 'total' | 'frequency';
  /**
   * TIES disjoint merge: PEFT's mean over the agreeing count (sign elected on the values), or
   * mergekit's (sign elected on weighted values) divided by the agreeing weights (`weights`,
   * its normalize: true) or not at all (`none`, normalize: false).
   */
  tiesDivisor?: 'count' | 'weights' | 'none';
  /** Breadcrumbs: share of the largest entries dropped as outliers. */
  gamma?: number;
  /** DELLA: keep probabilities range over density ± epsilon. */
  epsilon?: number;
  /** SLERP position. */
  t?: number;
  /** OPCM: the share of Σσ whose leading directions are protected from later adapters. */
  opcmAlpha?: number;
  rank?: OutputRank;
  /** Clamp the output factors to this quantile of their absolute values (kohya, PEFT's `clamp`). */
  clamp?: number;
  /** DARE, DELLA and LoRA-LEGO draw from this seed: the same seed gives the same merge. */
  seed?: number;
  layerGrid?: LayerGrid;
  /** LiNeS depth scaling of the merged ΔW: λ(ℓ) = alpha + beta·ℓ/(L−1). */
  lines?: { alpha: number; beta: number };
}

/** The spec with every parameter the method reads filled in: what the recipe records. */
export type ResolvedSpec = MergeSpec &
  Required<
    Pick<
      MergeSpec,
      'density' | 'majoritySign' | 'tiesDivisor' | 'gamma' | 'epsilon' | 't' | 'opcmAlpha' | 'seed'
    >
  >;

export const SPEC_DEFAULTS = {
  density: 0.5,
  majoritySign: 'total',
  tiesDivisor: 'count',
  gamma: 0.01,
  epsilon: 0.1,
  t: 0.5,
  opcmAlpha: 0.5,
  seed: 0,
} as const;

function check(ok: boolean, message: string): void {
  if (!ok) throw new RangeError(`merge: ${message}`);
}

/** Checks a spec (from JSON, YAML or the UI) and fills in the defaults; errors say what to fix. */
export function resolveSpec(spec: MergeSpec): ResolvedSpec {
  const info = MERGE_METHODS[spec.method] as MethodInfo | undefined;
  check(info !== undefined, `unknown method "${spec.method}"; one of ${METHOD_NAMES.join(', ')}`);
  check(spec.adapters.length > 0, 'no adapters given');
  for (const a of spec.adapters) {
    const ws = typeof a.weight === 'number' ? [a.weight] : a.weight;
    check(
      ws.length > 0 && ws.every(Number.isFinite),
      `${a.id}'s weight must be a number or a list of numbers`,
    );
  }
  const r: ResolvedSpec = { ...SPEC_DEFAULTS, ...spec };
  for (const d of [r.density, ...spec.adapters.map((a) => a.density ?? r.density)])
    check(d > 0 && d <= 1, `density must be in (0, 1], got ${d}`);
  check(r.gamma >= 0 && r.gamma < 1, `gamma must be in [0, 1), got ${r.gamma}`);
  if (spec.method === 'della_svd')
    check(
      r.density - r.epsilon > 0 && r.density + r.epsilon <= 1,
      `della needs 0 < density ± epsilon ≤ 1, got ${r.density} ± ${r.epsilon}`,
    );
  check(r.opcmAlpha >= 0 && r.opcmAlpha < 1, `opcmAlpha must be in [0, 1), got ${r.opcmAlpha}`);
  if (spec.method === 'cat' && spec.rank !== undefined)
    throw new RangeError('merge: cat keeps every rank; ask task_arithmetic or svd for a rank');
  check(['total', 'frequency'].includes(r.majoritySign), 'majoritySign is total or frequency');
  check(
    ['count', 'weights', 'none'].includes(r.tiesDivisor),
    'tiesDivisor is count, weights or none',
  );
  check(Number.isInteger(r.seed), `seed must be an integer, got ${r.seed}`);
  if (spec.method === 'slerp') {
    check(spec.adapters.length === 2, 'slerp merges exactly two adapters');
    check(Number.isFinite(r.t), 't must be a number');
  }
  if (typeof r.rank === 'number')
    check(Number.isInteger(r.rank) && r.rank >= 1, `rank must be an integer ≥ 1, got ${r.rank}`);
  else if (r.rank)
    check(
      r.rank.energy > 0 && r.rank.energy <= 1,
      `the energy to keep must be in (0, 1], got ${r.rank.energy}`,
    );
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

const ATTENTION = /^(q|k|v|o)_proj$/;

/** A layer × module grid: ramps go 0 → 1 (or 1 → 0) over depth; the only-presets zero the rest. */
export function gridPreset(
  preset: GridPreset,
  layers: number,
  modules: readonly string[],
): LayerGrid {
  const weights = Array.from({ length: layers }, (_, l) => {
    const depth = layers > 1 ? l / (layers - 1) : 1;
    return modules.map((m) => {
      if (preset === 'ramp_up') return depth;
      if (preset === 'ramp_down') return 1 - depth;
      if (preset === 'attention_only') return ATTENTION.test(m) ? 1 : 0;
      if (preset === 'mlp_only') return ATTENTION.test(m) ? 0 : 1;
      return 1;
    });
  });
  return { modules: [...modules], weights };
}
