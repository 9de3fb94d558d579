// mergekit-style YAML for adapters, read and written, so mergekit users feel at home:
//
//   merge_method: ties
//   models:
//     - model: ./adapters/zimmy
//       parameters: { weight: [0, 0.5, 1], density: 0.5 }
//     - model: ./adapters/snorp
//       parameters: { weight: 0.7 }
//   parameters: { normalize: true }
//
// Method names map to ours as the method entries say (the dense *_svd forms: mergekit merges full
// tensors entrywise), parameters by their mergekit keys (parameters.ts); weights may be gradient
// lists over depth. mergekit's TIES normalisation divides by the agreeing weights
// (`normalize: false`: no division). `linear` is mergekit's weighted average: weights are divided
// by their sum unless `normalize: false`.
import { parse, stringify } from 'yaml';
import { errorMessage } from '../errors.ts';
import { METHOD_NAMES, MERGE_METHODS, reads, type MergeMethod } from './methods.ts';
import {
  MERGE_PARAMETERS,
  NUMBER_PARAMETERS,
  PARAMETER_NAMES,
  type NumberParameter,
  type ParameterDefinition,
} from './parameters.ts';
import type { MergeSource, MergeSpec } from './spec.ts';

/** mergekit's method names, each to the method its entry says it means. */
export const MERGEKIT_METHODS = new Map<string, MergeMethod>(
  METHOD_NAMES.flatMap((method) =>
    (MERGE_METHODS[method].mergekit ?? []).map((name) => [name, method] as const),
  ),
);

/** Our parameters that a mergekit YAML sets globally, by their mergekit key. */
const GLOBAL_KEYS = NUMBER_PARAMETERS.flatMap((name) => {
  const { mergekit }: NumberParameter = MERGE_PARAMETERS[name];
  return mergekit ? [{ parameter: name, key: mergekit }] : [];
});

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
    fail(`not valid YAML (${errorMessage(e)})`);
  }
  if (typeof doc !== 'object' || doc === null) fail('expected a mapping at the top');
  const config = doc as Record<string, unknown>;
  if ('slices' in config) fail('slices are not supported for adapters; list them under models');
  const name = String(config.merge_method);
  const method = MERGEKIT_METHODS.get(name);
  if (!method)
    fail(
      `merge_method "${name}" is not supported; one of ${[...MERGEKIT_METHODS.keys()].join(', ')}`,
    );
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
    const density = optionalNumber(p, MERGE_PARAMETERS.density.mergekit);
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
  for (const { parameter, key } of GLOBAL_KEYS) {
    const v = optionalNumber(global, key);
    if (v !== undefined) spec[parameter] = v;
  }
  // mergekit normalises the sign election by the agreeing weights: our tiesDivisor.
  if (reads(method, 'tiesDivisor')) spec.tiesDivisor = normalize ? 'weights' : 'none';
  return { spec, models };
}

/** A spec as mergekit YAML, and what of it mergekit cannot say (by the card's labels). */
export interface WrittenYaml {
  yaml: string;
  lost: string[];
}

/**
 * The YAML `parseMergekitYaml` reads back as the same merge: the method under its mergekit name
 * (not `linear`, whose normalisation would rescale the weights), each source under `name(id)`
 * with its weight and density, the global parameters by their mergekit keys, TIES's divisor as
 * `normalize`. Refuses a method mergekit has no name for.
 */
export function writeMergekitYaml(spec: MergeSpec, name: (id: string) => string): WrittenYaml {
  const names: readonly string[] = MERGE_METHODS[spec.method].mergekit ?? [];
  const method = names.find((n) => n !== 'linear') ?? names.at(0);
  if (method === undefined)
    throw new RangeError(
      `mergekit config: mergekit has no method for ${spec.method}; one of ${[...new Set(MERGEKIT_METHODS.values())].join(', ')} can be written`,
    );
  const models = spec.adapters.map((source) => ({
    model: name(source.id),
    parameters: {
      weight: source.weight,
      ...(source.density === undefined
        ? {}
        : { [MERGE_PARAMETERS.density.mergekit]: source.density }),
    },
  }));
  const parameters: Record<string, number | boolean> = {};
  for (const { parameter, key } of GLOBAL_KEYS) {
    const value = spec[parameter];
    if (value !== undefined && reads(spec.method, parameter)) parameters[key] = value;
  }
  const lost: string[] = [];
  if (reads(spec.method, 'tiesDivisor') && spec.tiesDivisor !== undefined) {
    if (spec.tiesDivisor === 'count') lost.push(`${MERGE_PARAMETERS.tiesDivisor.label} count`);
    else parameters.normalize = spec.tiesDivisor === 'weights';
  }
  for (const p of PARAMETER_NAMES) {
    const definition: ParameterDefinition = MERGE_PARAMETERS[p];
    const unwritten = definition.kind !== 'number' || definition.mergekit === undefined;
    if (p !== 'tiesDivisor' && spec[p] !== undefined && reads(spec.method, p) && unwritten)
      lost.push(definition.label);
  }
  if (spec.layerGrid) lost.push('the layer × module grid');
  if (spec.lines) lost.push('LiNeS');
  if (spec.clamp !== undefined) lost.push('the clamp');
  const doc = {
    merge_method: method,
    models,
    ...(Object.keys(parameters).length > 0 ? { parameters } : {}),
  };
  return { yaml: stringify(doc), lost };
}
