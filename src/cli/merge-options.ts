// The merge command's options, its usage line and its --help: the method and parameter flags
// come from the tables (src/merge/methods.ts, src/merge/parameters.ts), so every method and
// parameter has its flag and its help without being listed here.
import { MERGE_METHODS, METHOD_NAMES, reads } from '../merge/methods.ts';
import {
  intervalText,
  MERGE_PARAMETERS,
  PARAMETER_NAMES,
  type ParameterDefinition,
  type ParameterName,
} from '../merge/parameters.ts';
import type { MergeSpec } from '../merge/spec.ts';
import { numberOption, UsageError } from './args.ts';

const definition = (name: ParameterName): ParameterDefinition => MERGE_PARAMETERS[name];

/** Options every method takes, with their usage and help. */
const GENERAL_OPTIONS = [
  { flag: 'weights', usage: '--weights w1,w2,…', help: 'one weight per adapter (default 1 each)' },
  {
    flag: 'lines',
    usage: '--lines ALPHA,BETA',
    help: 'LiNeS depth scaling of the merged ΔW: ALPHA + BETA·ℓ/(L−1)',
  },
  {
    flag: 'clamp',
    usage: '--clamp Q',
    help: 'clamp the output factors to the Q quantile of their absolute values',
  },
  {
    flag: 'layer-weights',
    usage: '--layer-weights FILE',
    help: 'layer × module multipliers: JSON {"modules": […], "weights": [[…], …]} or {"preset": NAME}',
  },
] as const;

/** A parameter's flags, as the usage line shows them. */
function parameterUsage(p: ParameterDefinition): string {
  if (p.kind === 'rank')
    return `--${p.cli} ${p.placeholder} | --${p.energyCli} ${p.energyPlaceholder}`;
  if (p.kind === 'choice') return `--${p.cli} ${p.choices.map((c) => c.value).join('|')}`;
  return `--${p.cli} ${p.placeholder}`;
}

/** The value options `merge` accepts. */
export const MERGE_VALUES: readonly string[] = [
  'method',
  ...PARAMETER_NAMES.flatMap((name) => {
    const p = definition(name);
    return p.kind === 'rank' ? [p.cli, p.energyCli] : [p.cli];
  }),
  ...GENERAL_OPTIONS.map((o) => o.flag),
  'config',
  'recipe',
  'out',
];

/** The command list's line for `merge`. */
export const MERGE_SUMMARY = [
  `merge adapters: --method ${METHOD_NAMES.join('|')}`,
  ...PARAMETER_NAMES.map((name) => `[${parameterUsage(definition(name))}]`),
  ...GENERAL_OPTIONS.map((o) => `[${o.usage}]`),
  '[--cpu] ADAPTER_DIR… --out DIR, or --config MERGEKIT.yaml, or --recipe merge_recipe.json (replay);',
  'writes PEFT files, merge_recipe.json and a model card; JSON summary on stdout; runs on the CPU',
  'with --cpu or where no GPU is found; `lora-studio merge --help` explains each method and option',
].join(' ');

/** A parameter's help line: what it sets, its values and default, and which methods read it. */
function parameterHelp(name: ParameterName): string {
  const p = definition(name);
  const values =
    p.kind === 'rank'
      ? []
      : [
          ...(p.kind === 'number' && p.range ? [`in ${intervalText(p.range)}`] : []),
          `default ${p.default}`,
        ];
  const readers = METHOD_NAMES.filter((m) => reads(m, name));
  return [p.help, ...values, `read by ${readers.join(', ')}`].join('; ');
}

const row = (left: string, right: string) => `  ${left.padEnd(34)} ${right}`;

/** `lora-studio merge --help`. */
export function mergeHelp(): string {
  return [
    'Usage: lora-studio merge --method NAME [options] ADAPTER_DIR… --out DIR',
    '       lora-studio merge --config MERGEKIT.yaml [options] --out DIR',
    '       lora-studio merge --recipe merge_recipe.json [options] [ADAPTER_DIR…] --out DIR',
    '',
    'Methods (docs/merging.md):',
    ...METHOD_NAMES.map((m) => row(m, MERGE_METHODS[m].summary)),
    '',
    'Method parameters (a method reads only its own):',
    ...PARAMETER_NAMES.map((name) => row(parameterUsage(definition(name)), parameterHelp(name))),
    '',
    'Options of every method:',
    ...GENERAL_OPTIONS.map((o) => row(o.usage, o.help)),
    row('--cpu', 'merge on the CPU (also where no GPU is found)'),
  ].join('\n');
}

/** Options given on the command line override the spec's; resolveSpec checks the values. */
export function applyOptions(spec: MergeSpec, values: Map<string, string>): MergeSpec {
  const s: MergeSpec = { ...spec };
  // Before the parameters, so that a recipe lists clamp before rank as it always has.
  if (values.has('clamp')) s.clamp = numberOption(values, 'clamp', 0);
  for (const name of PARAMETER_NAMES) {
    const p = definition(name);
    if (p.kind === 'rank') {
      if (values.has(p.cli)) s.rank = numberOption(values, p.cli, 0);
      if (values.has(p.energyCli))
        s.rank = {
          energy: numberOption(values, p.energyCli, 0),
          ...(typeof s.rank === 'number' ? { max: s.rank } : {}),
        };
    } else if (values.has(p.cli))
      Object.assign(s, {
        [name]: p.kind === 'number' ? numberOption(values, p.cli, 0) : values.get(p.cli),
      });
  }
  if (values.has('lines')) {
    const [alpha, beta] = numbers(values.get('lines')!, '--lines');
    s.lines = { alpha, beta };
  }
  return s;
}

/** A comma-separated list of numbers. */
export function numbers(text: string, what: string): number[] {
  const list = text.split(',').map(Number);
  if (list.some((n) => !Number.isFinite(n)))
    throw new UsageError(`${what} must be numbers, got ${text}`);
  return list;
}
