// What a LoRA adapter is made of, independent of its weights: rank, scaling, which modules it
// adapts and how it was initialised — the fields PEFT's LoraConfig carries (docs/design.md
// §2–4), resolved per module into the rank and scaling each one uses.
import type { ModelConfig } from '../model/config.ts';
import { modulePath, resolveTargets } from '../model/architecture.ts';
import type { InitMethod } from './inits.ts';
import { s2ftModules } from './s2ft.ts';
import type { VariantName } from './variants.ts';

export type { InitMethod, VariantName };

/**
 * Target lists that mean the same thing in every family: the keywords expand to the model's own
 * modules (architecture.ts's resolveTargets), `all-linear` as PEFT's does.
 */
export const TARGET_PRESETS = {
  attention: ['attention'],
  'all-linear': ['all-linear'],
} as const satisfies Record<string, readonly string[]>;

export interface LoraSpec {
  rank: number;
  alpha: number;
  /** Scaling alpha/√r instead of alpha/r (Kalajdzievski 2023). */
  rslora: boolean;
  /**
   * Module names (`q_proj`; GPT-2's `attn.c_proj`), PEFT-style suffixes (`c_proj` selects both
   * GPT-2 projections) or the keywords `attention` and `all-linear`.
   */
  targets: readonly string[];
  /** Layers to adapt; all when absent. */
  layers?: readonly number[];
  /** PEFT's rank_pattern / alpha_pattern: module-name regex (matched at a name boundary) → value. */
  rankPattern?: Readonly<Record<string, number>>;
  alphaPattern?: Readonly<Record<string, number>>;
  /** Dropout probability on each adapter's input during training. */
  dropout: number;
  /** How A and B start: an entry of the init table (src/adapters/inits.ts). */
  init: InitMethod;
  /**
   * How each module combines A and B with its weight: an entry of the variant table
   * (src/adapters/variants.ts); plain LoRA when absent.
   */
  variant?: VariantName;
  /**
   * DyLoRA (src/train/dylora.ts): each step trains a random rank prefix, so the adapter can be cut
   * to any rank after training.
   */
  dylora?: boolean;
  /** Orthogonal adaptation's shared basis and this adapter's slice of it; slice 0 of seed 0 when absent. */
  basis?: OrthogonalBasis;
  /**
   * S²FT (src/adapters/s2ft.ts): the share of each layer's attention heads and MLP channels that
   * train; 0.1 when absent.
   */
  density?: number;
}

/**
 * A basis several adapters share (orthogonal adaptation): per module, the orthonormal columns of
 * the QR of a Gaussian matrix drawn from `seed`; slice K of a rank-r module is columns K·r…K·r+r−1.
 */
export interface OrthogonalBasis {
  seed: number;
  slice: number;
}

/**
 * The first slice of rank `rank` that overlaps none of the slices adapters already took of the
 * same basis (each took columns up to (slice+1)·its rank).
 */
export function nextFreeSlice(
  taken: readonly { basis: OrthogonalBasis; rank: number }[],
  seed: number,
  rank: number,
): number {
  const used = Math.max(
    0,
    ...taken.filter((t) => t.basis.seed === seed).map((t) => (t.basis.slice + 1) * t.rank),
  );
  return Math.ceil(used / rank);
}

/** One module's factors on the host: A [rank × in], B [out × rank], row-major. */
export interface HostFactors {
  a: Float32Array;
  b: Float32Array;
}

/** One adapted module with everything resolved. */
export interface AdaptedModule {
  path: string;
  layer: number;
  /** The module's name in its layer (architecture.ts's ModuleSpec.name). */
  module: string;
  rank: number;
  alpha: number;
  scale: number;
  in: number;
  out: number;
  /** S²FT: its trained input columns come in groups of this many (a head's width); 1 when absent. */
  group?: number;
}

export function scaling(alpha: number, rank: number, rslora: boolean): number {
  return rslora ? alpha / Math.sqrt(rank) : alpha / rank;
}

/** PEFT's pattern lookup: the first key that matches the end of the path after a dot. */
export function patternValue(
  pattern: Readonly<Record<string, number>> | undefined,
  path: string,
): number | undefined {
  for (const [key, value] of Object.entries(pattern ?? {})) {
    if (new RegExp(`(^|\\.)(${key})$`).test(path)) return value;
  }
  return undefined;
}

/** The modules a spec adapts in a model, in layer then module order; checks the spec. */
export function adaptedModules(config: ModelConfig, spec: LoraSpec): AdaptedModule[] {
  const problems: string[] = [];
  if (!(Number.isInteger(spec.rank) && spec.rank >= 1))
    problems.push('rank must be an integer ≥ 1');
  if (!(spec.alpha > 0)) problems.push('alpha must be positive');
  if (!(spec.dropout >= 0 && spec.dropout < 1)) problems.push('dropout must be in [0, 1)');
  if (spec.targets.length === 0) problems.push('choose at least one target module');
  const layers = spec.layers ?? Array.from({ length: config.numLayers }, (_, l) => l);
  const outside = layers.filter((l) => !(Number.isInteger(l) && l >= 0 && l < config.numLayers));
  if (outside.length > 0)
    problems.push(`layers ${outside.join(', ')} do not exist (the model has ${config.numLayers})`);
  if (problems.length > 0) throw new RangeError(`LoRA settings: ${problems.join('; ')}`);
  // S²FT chooses its own modules and ranks: heads and channels by density.
  if (spec.init === 's2ft') return s2ftModules(config, spec);

  const { arch } = config;
  const targeted = resolveTargets(arch, spec.targets);
  const unknown = spec.targets.filter((t) => resolveTargets(arch, [t]).length === 0);
  if (unknown.length > 0)
    throw new RangeError(
      `LoRA settings: no module ${unknown.join(', ')} in this ${arch.family} model (use attention, all-linear or ${arch.modules.map((m) => m.name).join(', ')})`,
    );
  const modules: AdaptedModule[] = [];
  for (const layer of [...layers].sort((a, b) => a - b)) {
    for (const m of arch.modules) {
      if (!targeted.includes(m.name)) continue;
      const path = modulePath(arch, layer, m);
      const rank = patternValue(spec.rankPattern, path) ?? spec.rank;
      const alpha = patternValue(spec.alphaPattern, path) ?? spec.alpha;
      const shape = { in: m.in, out: m.out };
      if (rank > Math.min(shape.in, shape.out)) {
        throw new RangeError(
          `LoRA settings: rank ${rank} exceeds ${path}'s smaller side (${shape.out}×${shape.in})`,
        );
      }
      modules.push({
        path,
        layer,
        module: m.name,
        rank,
        alpha,
        scale: scaling(alpha, rank, spec.rslora),
        ...shape,
      });
    }
  }
  return modules;
}
