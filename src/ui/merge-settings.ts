// The merge card's settings and what it shows, from the method and parameter tables
// (src/merge/methods.ts, src/merge/parameters.ts): the method choices, one field per parameter
// the chosen method reads, and the part of the spec those fields give.
import {
  adapterCountText,
  intervalText,
  MERGE_METHODS,
  MERGE_PARAMETERS,
  METHOD_NAMES,
  PARAMETER_NAMES,
  reads,
  SPEC_DEFAULTS,
  takesAdapters,
  type ChoiceParameterName,
  type DefaultedParameter,
  type MergeMethod,
  type MethodFamily,
  type NumberParameterName,
  type ParameterDefinition,
  type ParameterName,
  type ParameterValues,
  type MergeOptions,
} from '../worker/api.ts';

/** How the output rank is chosen: the method's own rule, a fixed k, or a share of ‖ΔW‖². */
export type RankMode = 'default' | 'fixed' | 'energy';

/** The merge card's fields; a spec takes only those its method reads. */
export type MergeSettings = { method: MergeMethod } & Pick<ParameterValues, DefaultedParameter> & {
    rankMode: RankMode;
    rank: number;
    /** In energy mode, the percentage of ‖ΔW‖²_F each module keeps. */
    energyPercent: number;
    /** Quantile the output factors are clamped to; null: no clamp. */
    clamp: number | null;
    /** The merged adapter's name; blank: one made from the method and the sources. */
    name: string;
  };

export const DEFAULT_MERGE: MergeSettings = {
  method: 'ties_svd',
  ...SPEC_DEFAULTS,
  rankMode: 'default',
  rank: 8,
  energyPercent: 95,
  clamp: null,
  name: '',
};

/** The method select's groups, in this order. */
const FAMILY_LABELS: Record<MethodFamily, string> = {
  exact: 'Exact, on the factors',
  dense: 'Entrywise on ΔW, then SVD',
  factor: 'PEFT factor space (approximate)',
};

export const METHOD_GROUPS = Object.entries(FAMILY_LABELS).map(([family, label]) => ({
  label,
  methods: METHOD_NAMES.filter((m) => MERGE_METHODS[m].family === family).map((m) => ({
    value: m,
    label: `${MERGE_METHODS[m].label} (${m})`,
  })),
}));

interface FieldText {
  label: string;
  /** The tooltip: what it sets, and its range where it has one. */
  title: string;
}

/** One field of the card: a number input, a select, or the output rank's fields. */
export type ParameterField =
  | (FieldText & {
      kind: 'number';
      name: NumberParameterName;
      min?: number;
      max?: number;
      step: number;
      integer: boolean;
    })
  | (FieldText & {
      kind: 'choice';
      name: ChoiceParameterName;
      choices: readonly { value: string; label: string }[];
    })
  | (FieldText & { kind: 'rank'; name: 'rank'; defaultLabel: string });

/** The field of parameter `name`; a number input's bounds stay a step inside open ends. */
function field(name: ParameterName, method: MergeMethod): ParameterField {
  const p: ParameterDefinition = MERGE_PARAMETERS[name];
  if (p.kind === 'choice')
    return {
      kind: 'choice',
      name: name as ChoiceParameterName,
      label: p.label,
      title: p.help,
      choices: p.choices,
    };
  if (p.kind === 'rank')
    return {
      kind: 'rank',
      name: 'rank',
      label: p.label,
      title: p.help,
      defaultLabel: defaultRankLabel(method),
    };
  const { range } = p;
  return {
    kind: 'number',
    name: name as NumberParameterName,
    label: p.label,
    title: range ? `${p.help}, in ${intervalText(range)}` : p.help,
    min: range && range.min + (range.minOpen ? p.step : 0),
    max: range && range.max - (range.maxOpen ? p.step : 0),
    step: p.step,
    integer: p.integer === true,
  };
}

/** The fields for what `method` reads, in the table's order. */
export function parameterFields(method: MergeMethod): ParameterField[] {
  return PARAMETER_NAMES.filter((name) => reads(method, name)).map((name) => field(name, method));
}

/** The output rank when none is asked, for the rank select's first option. */
function defaultRankLabel(method: MergeMethod): string {
  return MERGE_METHODS[method].defaultRank === 'largest'
    ? 'largest source rank'
    : 'exact (no truncation)';
}

/** What to say when `method` cannot merge the `count` adapters switched on; null when it can. */
export function adapterCountProblem(method: MergeMethod, count: number): string | null {
  if (takesAdapters(method, count)) return null;
  const on = `${count} ${count === 1 ? 'is' : 'are'} switched on`;
  return `${MERGE_METHODS[method].label} merges ${adapterCountText(method)}; ${on}.`;
}

/**
 * The card's settings that give these options (a shared composition's): the inverse of
 * methodParameters, with today's defaults for what the method does not read.
 */
export function settingsFromOptions(options: MergeOptions): MergeSettings {
  const { method, rank } = options;
  const settings: MergeSettings = { ...DEFAULT_MERGE, method, clamp: options.clamp ?? null };
  for (const name of PARAMETER_NAMES) {
    const value = options[name];
    if (name !== 'rank' && reads(method, name) && value !== undefined)
      Object.assign(settings, { [name]: value });
  }
  if (typeof rank === 'number') Object.assign(settings, { rankMode: 'fixed', rank });
  else if (rank) Object.assign(settings, { rankMode: 'energy', energyPercent: 100 * rank.energy });
  return settings;
}

/** The parameters of the spec the settings give: only those the method reads. */
export function methodParameters(settings: MergeSettings): Partial<ParameterValues> {
  const { method } = settings;
  const spec: Partial<ParameterValues> = {};
  for (const name of PARAMETER_NAMES)
    if (name !== 'rank' && reads(method, name)) Object.assign(spec, { [name]: settings[name] });
  if (reads(method, 'rank') && settings.rankMode === 'fixed') spec.rank = settings.rank;
  if (reads(method, 'rank') && settings.rankMode === 'energy')
    spec.rank = { energy: settings.energyPercent / 100 };
  return spec;
}
