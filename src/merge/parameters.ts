// The parameters merge methods read, each described once: its default and allowed values, how the
// studio labels and explains it, its CLI flag and its mergekit key. The spec's types and defaults,
// resolveSpec's checks, the merge card's fields, the CLI's flags and help, the mergekit reader
// and the docs' parameter table all come from this table. Plain data: the UI imports it.

/** The output rank: a fixed k, or per module the smallest k keeping a share of ‖ΔW‖²_F. */
export type OutputRank = number | { energy: number; max?: number };

/** An interval of allowed values; either end may be open. */
export interface Interval {
  min: number;
  max: number;
  minOpen?: boolean;
  maxOpen?: boolean;
}

interface Described {
  /** The merge card's label. */
  label: string;
  /** One line for the card's tooltip, the CLI's help and the docs. */
  help: string;
  /** The CLI's flag, without `--`. */
  cli: string;
}

export interface NumberParameter extends Described {
  kind: 'number';
  /** What the CLI's usage line calls the value. */
  placeholder: string;
  default: number;
  /** Allowed values; without one, any finite number. */
  range?: Interval;
  integer?: boolean;
  /** The step of the card's number field. */
  step: number;
  /** The key in a mergekit YAML's `parameters`. */
  mergekit?: string;
}

export interface ChoiceParameter extends Described {
  kind: 'choice';
  default: string;
  choices: readonly { value: string; label: string }[];
}

/** The output rank, with no default: a fixed k (`--rank K`) or an energy share (`--energy F`). */
export interface RankParameter extends Described {
  kind: 'rank';
  placeholder: string;
  energyCli: string;
  energyPlaceholder: string;
}

export type ParameterDefinition = NumberParameter | ChoiceParameter | RankParameter;

/** In this order the recipe records them and the card shows them. */
export const MERGE_PARAMETERS = {
  density: {
    kind: 'number',
    label: 'Density',
    help: 'Share of entries kept',
    cli: 'density',
    placeholder: 'D',
    mergekit: 'density',
    default: 0.5,
    range: { min: 0, max: 1, minOpen: true },
    step: 0.05,
  },
  majoritySign: {
    kind: 'choice',
    label: 'Majority sign',
    help: 'TIES sign election: by the sum of values (total) or the count of signs (frequency)',
    cli: 'majority-sign',
    default: 'total',
    choices: [
      { value: 'total', label: 'total' },
      { value: 'frequency', label: 'frequency' },
    ],
  },
  tiesDivisor: {
    kind: 'choice',
    label: 'TIES divisor',
    help: 'What the agreeing entries are divided by: their count (PEFT), their weights (mergekit) or nothing',
    cli: 'ties-divisor',
    default: 'count',
    choices: [
      { value: 'count', label: 'count (PEFT)' },
      { value: 'weights', label: 'weights (mergekit)' },
      { value: 'none', label: 'none' },
    ],
  },
  gamma: {
    kind: 'number',
    label: 'Gamma',
    help: 'Breadcrumbs: share of the largest entries dropped as outliers',
    cli: 'gamma',
    placeholder: 'G',
    mergekit: 'gamma',
    default: 0.01,
    range: { min: 0, max: 1, maxOpen: true },
    step: 0.01,
  },
  epsilon: {
    kind: 'number',
    label: 'Epsilon',
    help: 'DELLA: keep probabilities range over density ± epsilon',
    cli: 'epsilon',
    placeholder: 'E',
    mergekit: 'epsilon',
    default: 0.1,
    step: 0.01,
  },
  t: {
    kind: 'number',
    label: 't',
    help: 'SLERP position: 0 the first adapter, 1 the second',
    cli: 't',
    placeholder: 'T',
    mergekit: 't',
    default: 0.5,
    step: 0.05,
  },
  opcmAlpha: {
    kind: 'number',
    label: 'OPCM alpha',
    help: 'OPCM: share of Σσ whose leading directions later adapters may not change',
    cli: 'opcm-alpha',
    placeholder: 'A',
    default: 0.5,
    range: { min: 0, max: 1, maxOpen: true },
    step: 0.05,
  },
  seed: {
    kind: 'number',
    label: 'Seed',
    help: 'The random draws (DARE, DELLA, LoRA-LEGO): the same seed, the same merge',
    cli: 'seed',
    placeholder: 'S',
    default: 0,
    integer: true,
    step: 1,
  },
  rank: {
    kind: 'rank',
    label: 'Output rank',
    help: 'Per module: a fixed rank k, or the fewest directions keeping a share of ‖ΔW‖²',
    cli: 'rank',
    placeholder: 'K',
    energyCli: 'energy',
    energyPlaceholder: 'F',
  },
} as const satisfies Record<string, ParameterDefinition>;

type Parameters = typeof MERGE_PARAMETERS;
export type ParameterName = keyof Parameters;
export const PARAMETER_NAMES = Object.keys(MERGE_PARAMETERS) as ParameterName[];

type ValueOf<P> = P extends { kind: 'choice'; choices: readonly { value: infer V }[] }
  ? V
  : P extends { kind: 'rank' }
    ? OutputRank
    : number;

/** Every parameter with the type of its value. */
export type ParameterValues = { -readonly [P in ParameterName]: ValueOf<Parameters[P]> };

/** The parameters with a default: a resolved spec always holds them. */
export type DefaultedParameter = {
  [P in ParameterName]: Parameters[P] extends { default: unknown } ? P : never;
}[ParameterName];

/** The parameters whose value is one number. */
export type NumberParameterName = {
  [P in ParameterName]: Parameters[P] extends { kind: 'number' } ? P : never;
}[ParameterName];

/** The parameters whose value is one of their choices. */
export type ChoiceParameterName = {
  [P in ParameterName]: Parameters[P] extends { kind: 'choice' } ? P : never;
}[ParameterName];

export const NUMBER_PARAMETERS = PARAMETER_NAMES.filter(
  (name): name is NumberParameterName => MERGE_PARAMETERS[name].kind === 'number',
);

export const SPEC_DEFAULTS = Object.fromEntries(
  PARAMETER_NAMES.flatMap((name) => {
    const p: ParameterDefinition = MERGE_PARAMETERS[name];
    return p.kind === 'rank' ? [] : [[name, p.default]];
  }),
) as Pick<ParameterValues, DefaultedParameter>;

/** "(0, 1]". */
export function intervalText(r: Interval): string {
  return `${r.minOpen ? '(' : '['}${r.min}, ${r.max}${r.maxOpen ? ')' : ']'}`;
}

function inInterval(v: number, r: Interval): boolean {
  return (r.minOpen ? v > r.min : v >= r.min) && (r.maxOpen ? v < r.max : v <= r.max);
}

const orList = (words: readonly string[]) =>
  words.length > 1 ? `${words.slice(0, -1).join(', ')} or ${words.at(-1)!}` : words.join('');

/** What is wrong with `value` as parameter `name`, or null when it is allowed. */
export function parameterProblem(name: ParameterName, value: unknown): string | null {
  const p: ParameterDefinition = MERGE_PARAMETERS[name];
  if (p.kind === 'choice') {
    const values = p.choices.map((c) => c.value);
    return values.includes(value as string) ? null : `${name} is ${orList(values)}`;
  }
  if (p.kind === 'rank') return rankProblem(value as OutputRank | undefined);
  if (typeof value !== 'number' || !Number.isFinite(value)) return `${name} must be a number`;
  if (p.integer && !Number.isInteger(value)) return `${name} must be an integer, got ${value}`;
  if (p.range && !inInterval(value, p.range))
    return `${name} must be in ${intervalText(p.range)}, got ${value}`;
  return null;
}

function rankProblem(rank: OutputRank | undefined): string | null {
  if (typeof rank === 'number')
    return Number.isInteger(rank) && rank >= 1 ? null : `rank must be an integer ≥ 1, got ${rank}`;
  if (!rank) return null;
  return rank.energy > 0 && rank.energy <= 1
    ? null
    : `the energy to keep must be in (0, 1], got ${rank.energy}`;
}
