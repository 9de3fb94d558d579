// mergekit-style YAML for adapters, so mergekit users feel at home:
//
//   merge_method: ties
//   models:
//     - model: ./adapters/zimmy
//       parameters: { weight: [0, 0.5, 1], density: 0.5 }
//     - model: ./adapters/snorp
//       parameters: { weight: 0.7 }
//   parameters: { normalize: true }
//
// Method names map to ours (the dense *_svd forms: mergekit merges full tensors entrywise);
// weights may be gradient lists over depth. mergekit's TIES normalisation divides by the
// agreeing weights (`normalize: false`: no division). `linear` is mergekit's weighted average:
// weights are divided by their sum unless `normalize: false`.
import { parse } from 'yaml';
import type { MergeMethod, MergeSource, MergeSpec } from './spec.ts';

const METHOD_MAP: Record<string, MergeMethod> = {
  linear: 'task_arithmetic',
  task_arithmetic: 'task_arithmetic',
  ties: 'ties_svd',
  dare_ties: 'dare_ties_svd',
  dare_linear: 'dare_linear_svd',
  breadcrumbs: 'breadcrumbs_svd',
  della: 'della_svd',
  slerp: 'slerp',
};

/** The methods whose sign election mergekit normalises. */
const ELECTING = new Set(['ties', 'dare_ties', 'della']);

type Parameters = Record<string, unknown>;

function fail(message: string): never {
  throw new RangeError(`mergekit config: ${message}`);
}

function numberOrList(value: unknown, what: string): number | number[] {
  if (typeof value === 'number') return value;
  if (Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === 'number'))
    return value;
  return fail(`${what} must be a number or a list of numbers`);
}

function optionalNumber(p: Parameters, key: string): number | undefined {
  const v = p[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number') fail(`${key} must be one number here (lists are for weights only)`);
  return v;
}

/** The spec and, per source in order, the adapter folder (as written in the YAML). */
export function parseMergekitYaml(text: string): { spec: MergeSpec; models: string[] } {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    fail(`not valid YAML (${e instanceof Error ? e.message : String(e)})`);
  }
  if (typeof doc !== 'object' || doc === null) fail('expected a mapping at the top');
  const config = doc as Record<string, unknown>;
  if ('slices' in config) fail('slices are not supported for adapters; list them under models');
  const name = String(config.merge_method);
  const method = METHOD_MAP[name] as MergeMethod | undefined;
  if (!method)
    fail(`merge_method "${name}" is not supported; one of ${Object.keys(METHOD_MAP).join(', ')}`);
  if (!Array.isArray(config.models) || config.models.length === 0) fail('models is empty');
  const global = (config.parameters ?? {}) as Parameters;
  const normalize = global.normalize !== false;
  const models: string[] = [];
  const adapters: MergeSource[] = (config.models as unknown[]).map((entry, i) => {
    const m = (entry ?? {}) as { model?: unknown; parameters?: Parameters };
    if (typeof m.model !== 'string') fail(`models[${i}] needs a model path`);
    models.push(m.model);
    const p = m.parameters ?? {};
    const source: MergeSource = {
      id: m.model,
      weight: p.weight === undefined ? 1 : numberOrList(p.weight, `${m.model}'s weight`),
    };
    const density = optionalNumber(p, 'density');
    if (density !== undefined) source.density = density;
    return source;
  });
  if (name === 'linear' && normalize) {
    const scalars = adapters.every((a) => typeof a.weight === 'number');
    if (!scalars) fail('linear with normalize needs plain number weights');
    const total = adapters.reduce((t, a) => t + (a.weight as number), 0);
    if (total === 0) fail('linear weights sum to 0 and cannot be normalised');
    for (const a of adapters) a.weight = (a.weight as number) / total;
  }
  const spec: MergeSpec = { method, adapters };
  const density = optionalNumber(global, 'density');
  if (density !== undefined) spec.density = density;
  for (const key of ['gamma', 'epsilon', 't'] as const) {
    const v = optionalNumber(global, key);
    if (v !== undefined) spec[key] = v;
  }
  if (ELECTING.has(name)) spec.tiesDivisor = normalize ? 'weights' : 'none';
  return { spec, models };
}
