// Every way an adapter's A and B can start, described once (docs/design.md §4): the CLI's
// --init values and help, the Train panel's choices, the PEFT export, the statistics read from the
// data, the init study and the docs' list all come from INITS. An init's factor code lives in its
// own file under inits/ and is imported on first use: the UI imports this table for its choices
// and must stay free of GPU code.
import type { Gpu } from '../gpu/device.ts';
import type { Tensor } from '../gpu/tensor.ts';
import type { AdaptedModule, LoraSpec, OrthogonalBasis } from './config.ts';
import type { Components } from './inits/components.ts';

/** What an init reads from a few batches of the training data, per adapted module. */
export interface StatisticValues {
  /** Nothing: the init needs the weight at most. */
  none: undefined;
  /** Σxᵀx of the module's inputs. */
  'input-covariance': Tensor;
  /** The top components of that covariance, collected until they stop turning. */
  'input-components': Components;
  /** The mean gradient of the loss with respect to the module's full weight. */
  'weight-gradient': Tensor;
}

export type StatisticKind = keyof StatisticValues;

/** The statistics collected for an init, by module path (src/train/statistics.ts). */
export type InitStatistics = ReadonlyMap<string, StatisticValues[StatisticKind]>;

/**
 * What an init trains: A, B, a core C between them (y += s·g·B·C·A·x, src/train/core.ts) — its
 * diagonal only, or the whole r × r matrix — and the gain g multiplying it (else 1).
 */
export type Trained = 'a' | 'b' | 'diagonal' | 'core' | 'gain';

/** A [rank × in] and B [out × rank] of one module. */
export interface Factors {
  a: Tensor;
  b: Tensor;
  /**
   * Where the init trains a core between B and A that does not start at zero (SORSA: the
   * singular values; LoLDU: the LDU's diagonal), its start [r × r], row-major: the term is then
   * s·B·C·A.
   */
  core?: Float32Array;
}

/** What one module's factors are computed from. */
export interface FactorsJob<K extends StatisticKind> {
  gpu: Gpu;
  module: AdaptedModule;
  /** The frozen weight [out × in]: in f32, the copy that becomes the residual, for inits that mutate the base. */
  weight: Tensor;
  /** The --init value, with its parameter where it has one. */
  init: string;
  /** The module's own seed for random draws. */
  seed: number;
  /** The shared basis orthogonal adaptation takes its slice of (LoraSpec.basis). */
  basis: OrthogonalBasis;
  statistic: StatisticValues[K];
}

export interface InitEntry<K extends StatisticKind = StatisticKind> {
  /** The --init value; one ending in `_N` stands for every whole number N ≥ 1 in its place. */
  name: string;
  /** For a parameterised name: the value the Train panel and the init study use. */
  example?: string;
  /** As the docs and the init study name it (no commas: `init-study --only` splits on them). */
  shortName: string;
  /** The Train panel's option. */
  label: string;
  /** What it does, in one line: the Train panel's hint. */
  explanation: string;
  /**
   * Moves part of W into the adapter: training runs against the residual W − s·B₀A₀, and the
   * export converts to a plain LoRA for the original base.
   */
  mutatesBase: boolean;
  /**
   * What training updates; the rest stays as the init made it (FFA-LoRA and orthogonal
   * adaptation freeze A, SVFit both factors), with no gradient buffer and no optimiser state.
   */
  trains: readonly Trained[];
  /**
   * Training adds SORSA's orthonormal regulariser γ·(‖BᵀB − I‖² + ‖A·Aᵀ − I‖²) to the loss (γ the
   * run's orthonormalWeight; src/train/orthonormal.ts) and reports how far B and A are from
   * orthonormal.
   */
  orthonormal?: true;
  statistic: K;
  /** Batches of the training data the statistic is collected over (0 when it needs none). */
  batches: number;
  /**
   * adapter_config.json's init_lora_weights. The export is always for the original base, as a
   * plain LoRA, so PEFT must not re-run a base-mutating or data-aware init on loading it: true.
   */
  initLoraWeights: true | 'gaussian';
  // Methods, not function properties: the table's entries, each typed for its own statistic, are
  // then InitEntry values too, looked up by name and handed the statistic collected for them.
  factors(job: FactorsJob<K>): Promise<Factors>;
  /** Moves rank between modules once the statistics are known (the budget Σ r stays). */
  redistributeRanks?(
    modules: readonly AdaptedModule[],
    statistics: ReadonlyMap<string, StatisticValues[K]>,
    rslora: boolean,
  ): Promise<AdaptedModule[]>;
}

type AnyInitEntry = { [K in StatisticKind]: InitEntry<K> }[StatisticKind];

const BOTH = ['a', 'b'] as const;

/** Batches the data-aware inits read: the first training sequences, in order (reproducible). */
const DATA_BATCHES = 8;

export const INITS = [
  {
    name: 'lora',
    shortName: 'LoRA',
    label: 'LoRA (PEFT default)',
    explanation: 'A random (Kaiming-uniform), B zero: training starts from the unchanged model.',
    mutatesBase: false,
    trains: BOTH,
    statistic: 'none',
    batches: 0,
    initLoraWeights: true,
    factors: async (job) => (await import('./inits/random.ts')).kaimingUniformFactors(job),
  },
  {
    name: 'gaussian',
    shortName: 'Gaussian',
    label: 'Gaussian',
    explanation: 'As the default, with A drawn from a Gaussian (standard deviation 1/r, as PEFT).',
    mutatesBase: false,
    trains: BOTH,
    statistic: 'none',
    batches: 0,
    initLoraWeights: 'gaussian',
    factors: async (job) => (await import('./inits/random.ts')).gaussianFactors(job),
  },
  {
    name: 'ffa',
    shortName: 'FFA-LoRA',
    label: 'FFA-LoRA (A frozen)',
    explanation:
      'A random and frozen, only B trains (Sun et al. 2024): half the trained parameters, and adapters that add up with less interference.',
    mutatesBase: false,
    trains: ['b'],
    statistic: 'none',
    batches: 0,
    initLoraWeights: true,
    factors: async (job) => (await import('./inits/random.ts')).kaimingUniformFactors(job),
  },
  {
    name: 'orthogonal',
    shortName: 'Orthogonal',
    label: 'Orthogonal (train for merging)',
    explanation:
      'A is a frozen slice of an orthonormal basis shared by its seed (Po et al. 2024): adapters trained on different slices sum with little interference.',
    mutatesBase: false,
    trains: ['b'],
    statistic: 'none',
    batches: 0,
    initLoraWeights: true,
    factors: async (job) => (await import('./inits/orthogonal.ts')).orthogonalFactors(job),
  },
  {
    name: 's2ft',
    shortName: 'S²FT',
    label: 'S²FT (sparse: trains a few heads’ and channels’ weights)',
    explanation:
      'Per layer, a random share (the density) of attention heads and MLP channels; exactly the output and down projections’ weights that read them train (Yang et al. 2024): a sparse ΔW, exported as the exact LoRA.',
    mutatesBase: false,
    trains: ['b'],
    statistic: 'none',
    batches: 0,
    initLoraWeights: true,
    factors: async (job) => (await import('./inits/s2ft.ts')).s2ftFactors(job),
  },
  {
    name: 'svfit',
    shortName: 'SVFit',
    label: 'SVFit (tiny: trains singular values)',
    explanation:
      'Only the top r singular values of each weight train, its singular vectors frozen (Sun et al. 2024): r parameters per module.',
    mutatesBase: false,
    trains: ['diagonal'],
    statistic: 'none',
    batches: 0,
    initLoraWeights: true,
    factors: async (job) => (await import('./inits/svfit.ts')).svfitFactors(job),
  },
  {
    name: 'lora_sb',
    shortName: 'LoRA-SB',
    label: 'LoRA-SB (tiny, reads your data: trains an r×r core)',
    explanation:
      'B and A frozen from the SVD of the full-weight gradient on a few batches; only the r×r matrix between them trains (Ponkshe et al. 2024, the LoRA-XS form).',
    mutatesBase: false,
    trains: ['core'],
    statistic: 'weight-gradient',
    batches: DATA_BATCHES,
    initLoraWeights: true,
    factors: async ({ gpu, module, statistic, seed }) =>
      (await import('./inits/lora-sb.ts')).loraSbFactors(gpu, module, statistic, seed),
  },
  {
    name: 'sorsa',
    shortName: 'SORSA',
    label: 'SORSA (PiSSA with trained singular values, kept orthonormal)',
    explanation:
      'W’s top r singular vectors and values all train, a regulariser keeping the vectors orthonormal (Cao & Song 2024); the base keeps the rest.',
    mutatesBase: true,
    trains: ['a', 'b', 'diagonal'],
    orthonormal: true,
    statistic: 'none',
    batches: 0,
    initLoraWeights: true,
    factors: async (job) => (await import('./inits/sorsa.ts')).sorsaFactors(job),
  },
  {
    name: 'loldu',
    shortName: 'LoLDU',
    label: 'LoLDU (tiny: trains the LDU diagonal and a scale)',
    explanation:
      'W = P·L·D·U by pivoted LU; L and U frozen, the top r values of D and one scale per module train (Shi et al. 2024): r + 1 parameters per module.',
    mutatesBase: true,
    trains: ['diagonal', 'gain'],
    statistic: 'none',
    batches: 0,
    initLoraWeights: true,
    factors: async (job) => (await import('./inits/loldu.ts')).lolduFactors(job),
  },
  {
    name: 'pissa',
    shortName: 'PiSSA',
    label: 'PiSSA, exact SVD',
    explanation:
      'A and B hold the top r singular directions of each weight; the frozen base keeps the rest.',
    mutatesBase: true,
    trains: BOTH,
    statistic: 'none',
    batches: 0,
    initLoraWeights: true,
    factors: async ({ gpu, module, weight, seed }) =>
      (await import('./inits/principal.ts')).principalFactors(gpu, module, weight, {
        end: 'largest',
        seed,
      }),
  },
  {
    name: 'pissa_niter_N',
    example: 'pissa_niter_4',
    shortName: 'PiSSA fast SVD',
    label: 'PiSSA, fast SVD (4 iterations)',
    explanation:
      'PiSSA from a randomized SVD with 4 power iterations: nearly the same, much faster.',
    mutatesBase: true,
    trains: BOTH,
    statistic: 'none',
    batches: 0,
    initLoraWeights: true,
    factors: async ({ gpu, module, weight, seed, init }) =>
      (await import('./inits/principal.ts')).principalFactors(gpu, module, weight, {
        end: 'largest',
        niter: parameterOf(init),
        seed,
      }),
  },
  {
    name: 'milora',
    shortName: 'MiLoRA',
    label: 'MiLoRA',
    explanation:
      'The smallest singular directions: adapts what the model uses least, keeping its knowledge.',
    mutatesBase: true,
    trains: BOTH,
    statistic: 'none',
    batches: 0,
    initLoraWeights: true,
    factors: async ({ gpu, module, weight, seed }) =>
      (await import('./inits/principal.ts')).principalFactors(gpu, module, weight, {
        end: 'smallest',
        seed,
      }),
  },
  {
    name: 'olora',
    shortName: 'OLoRA',
    label: 'OLoRA',
    explanation: 'An orthonormal start from a QR decomposition of each weight.',
    mutatesBase: true,
    trains: BOTH,
    statistic: 'none',
    batches: 0,
    initLoraWeights: true,
    factors: async ({ gpu, module, weight }) =>
      (await import('./inits/olora.ts')).oloraFactors(gpu, module, weight),
  },
  {
    name: 'eva',
    shortName: 'EVA',
    label: 'EVA (reads your data)',
    explanation:
      'A = the main directions of each layer’s inputs on your data, B zero; rank moves to the layers whose inputs vary most.',
    mutatesBase: false,
    trains: BOTH,
    statistic: 'input-components',
    batches: DATA_BATCHES,
    initLoraWeights: true,
    factors: async ({ gpu, module, statistic }) =>
      (await import('./inits/eva.ts')).evaFactors(gpu, module, statistic),
    redistributeRanks: async (modules, components, rslora) =>
      (await import('./inits/eva.ts')).evaRanks(modules, components, rslora),
  },
  {
    name: 'corda_ipm',
    shortName: 'CorDA IPM',
    label: 'CorDA, instruction-previewed (reads your data)',
    explanation:
      'Adapts the weight directions your data excites most (SVD of W·C, C its input covariance).',
    mutatesBase: true,
    trains: BOTH,
    statistic: 'input-covariance',
    batches: DATA_BATCHES,
    initLoraWeights: true,
    factors: async ({ gpu, module, weight, statistic }) =>
      (await import('./inits/corda.ts')).cordaFactors(gpu, module, weight, statistic, 'ipm'),
  },
  {
    name: 'corda_kpm',
    shortName: 'CorDA KPM',
    label: 'CorDA, knowledge-preserved (reads your data)',
    explanation:
      'Adapts the directions your data excites least, leaving the model’s main behaviour in place.',
    mutatesBase: true,
    trains: BOTH,
    statistic: 'input-covariance',
    batches: DATA_BATCHES,
    initLoraWeights: true,
    factors: async ({ gpu, module, weight, statistic }) =>
      (await import('./inits/corda.ts')).cordaFactors(gpu, module, weight, statistic, 'kpm'),
  },
  {
    name: 'lora_ga',
    shortName: 'LoRA-GA',
    label: 'LoRA-GA (reads your data)',
    explanation:
      'Starts from the SVD of the full-weight gradient on a few batches: the first steps move as full fine-tuning would.',
    mutatesBase: true,
    trains: BOTH,
    statistic: 'weight-gradient',
    batches: DATA_BATCHES,
    initLoraWeights: true,
    factors: async ({ gpu, module, statistic, seed }) =>
      (await import('./inits/lora-ga.ts')).loraGaFactors(gpu, module, statistic, seed),
  },
] as const satisfies readonly AnyInitEntry[];

/** `pissa_niter_N` stands for the type pissa_niter_${number}. */
type Parameterised<N extends string> = N extends `${infer P}_N` ? `${P}_${number}` : N;

/** An --init value (LoraSpec.init). */
export type InitMethod = Parameterised<(typeof INITS)[number]['name']>;

/** The names as the CLI's help lists them. */
export const INIT_NAMES: readonly string[] = INITS.map((e) => e.name);

function matches(entry: InitEntry, value: string): boolean {
  if (!entry.name.endsWith('_N')) return value === entry.name;
  const prefix = entry.name.slice(0, -1);
  return value.startsWith(prefix) && /^[1-9]\d*$/.test(value.slice(prefix.length));
}

/** The whole number a parameterised value carries (pissa_niter_4: 4). */
function parameterOf(value: string): number {
  return Number(value.slice(value.lastIndexOf('_') + 1));
}

export function parseInit(value: string): InitMethod {
  if (INITS.some((e) => matches(e, value))) return value as InitMethod;
  throw new RangeError(
    `unknown init "${value}": use ${INIT_NAMES.join(', ')} (N a whole number ≥ 1)`,
  );
}

/** The table's entry for an init value. */
export function initEntry(init: InitMethod): InitEntry {
  const entry = INITS.find((e) => matches(e, init));
  if (!entry) throw new RangeError(`unknown init "${init}"`);
  return entry;
}

/** The value the Train panel offers and the init study trains for an entry. */
export function initChoice(entry: InitEntry): InitMethod {
  return parseInit(entry.example ?? entry.name);
}

/** Inits that move part of W into the adapter and train against the residual. */
export function mutatesBase(init: InitMethod): boolean {
  return initEntry(init).mutatesBase;
}

/** The basis of a spec that names none: slice 0 of seed 0. */
export const DEFAULT_BASIS: OrthogonalBasis = { seed: 0, slice: 0 };

/** Whether the init takes its A from a shared basis (LoraSpec.basis, `--basis-seed/--basis-slice`). */
export function takesBasis(init: InitMethod): boolean {
  return initEntry(init).name === 'orthogonal';
}

/** The basis a spec's adapter takes its slice of; undefined for inits without one. */
export function basisOf(spec: LoraSpec): OrthogonalBasis | undefined {
  return takesBasis(spec.init) ? (spec.basis ?? DEFAULT_BASIS) : undefined;
}
