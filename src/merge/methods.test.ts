// Every method and every parameter of the tables (methods.ts, parameters.ts) reaches each place
// that offers them: the CLI's flags and help, the merge card's choices and fields, the mergekit
// reader. A method file left out of the table, or a parameter no method reads, fails here; the
// docs' tables are checked by docs.test.ts.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { applyOptions, MERGE_SUMMARY, MERGE_VALUES, mergeHelp } from '../cli/merge-options.ts';
import {
  DEFAULT_MERGE,
  methodParameters,
  METHOD_GROUPS,
  parameterFields,
} from '../ui/merge-settings.ts';
import { parseMergekitYaml, writeMergekitYaml } from './mergekit.ts';
import { MERGE_METHODS, METHOD_NAMES, reads, type MergeMethodDefinition } from './methods.ts';
import {
  MERGE_PARAMETERS,
  PARAMETER_NAMES,
  parameterProblem,
  SPEC_DEFAULTS,
  type ParameterDefinition,
} from './parameters.ts';
import { resolveSpec, type MergeSpec } from './spec.ts';

const definitions = PARAMETER_NAMES.map((name) => {
  const p: ParameterDefinition = MERGE_PARAMETERS[name];
  return { name, p };
});

/** A spec for `method` with as many adapters as it takes. */
const specFor = (method: MergeMethodDefinition): MergeSpec => ({
  method: method.name as MergeSpec['method'],
  adapters: Array.from({ length: method.adapters?.min ?? 2 }, (_, i) => ({
    id: `a${i}`,
    weight: 1,
  })),
});

describe('the method table', () => {
  it('holds every method described in src/merge/methods/, once', async () => {
    const folder = new URL('./methods/', import.meta.url);
    const described: unknown[] = [];
    for (const file of readdirSync(folder).filter((f) => f.endsWith('.ts'))) {
      const module = (await import(new URL(file, folder).href)) as Record<string, unknown>;
      described.push(
        ...Object.values(module).filter((v) => typeof v === 'object' && v && 'implementation' in v),
      );
    }
    expect(described).toHaveLength(METHOD_NAMES.length);
    for (const method of described) expect(Object.values(MERGE_METHODS)).toContain(method);
    expect(METHOD_NAMES).toEqual(METHOD_NAMES.map((m) => MERGE_METHODS[m].name));
  });

  it('imports no engine code at run time: the UI bundles it', () => {
    const table = ['methods.ts', 'parameters.ts', 'spec.ts'].map(
      (f) => new URL(f, import.meta.url),
    );
    const folder = new URL('./methods/', import.meta.url);
    table.push(...readdirSync(folder).map((f) => new URL(f, folder)));
    for (const file of table) {
      const source = readFileSync(file, 'utf8');
      for (const [, from] of source.matchAll(/^(?:import|export) (?!type)[^;]*? from '([^']+)'/gm))
        expect(table.map(String), `${file.pathname} imports ${from}`).toContain(
          new URL(from, file).href,
        );
    }
  });

  it.each(METHOD_NAMES)('%s resolves with its defaults', (name) => {
    expect(resolveSpec(specFor(MERGE_METHODS[name]))).toMatchObject(SPEC_DEFAULTS);
  });

  it.each(METHOD_NAMES)('%s is a choice of the CLI and of the merge card', (name) => {
    const accepted = /--method (\S+)/.exec(MERGE_SUMMARY)?.[1].split('|');
    expect(accepted).toContain(name);
    expect(mergeHelp()).toContain(`\n  ${name} `);
    const choices = METHOD_GROUPS.flatMap((g) => g.methods.map((m) => m.value));
    expect(choices.filter((m) => m === name)).toHaveLength(1);
    expect(parameterFields(name).map((f) => f.name)).toEqual(
      PARAMETER_NAMES.filter((p) => MERGE_METHODS[name].parameters.includes(p)),
    );
  });

  it('reads each of its mergekit names from a YAML', () => {
    for (const name of METHOD_NAMES)
      for (const mergekit of MERGE_METHODS[name].mergekit ?? []) {
        const yaml = `merge_method: ${mergekit}\nmodels: [{ model: a }, { model: b }]\n`;
        expect(parseMergekitYaml(yaml).spec.method, mergekit).toBe(name);
      }
  });

  it('writes each method with a mergekit name as YAML that reads back as the same merge', () => {
    for (const method of METHOD_NAMES.filter((m) => MERGE_METHODS[m].mergekit)) {
      const spec: MergeSpec = {
        ...SPEC_DEFAULTS,
        method,
        adapters: [
          { id: 'lib-1', weight: 0.7, density: 0.3 },
          { id: 'lib-2', weight: [0, 0.5, 1] },
        ],
        // What mergekit writes as normalize; count has no mergekit spelling.
        tiesDivisor: 'weights',
      };
      for (const { name, p } of definitions)
        if (p.kind === 'number' && p.mergekit && reads(method, name))
          Object.assign(spec, { [name]: 0.25 });
      const { yaml, lost } = writeMergekitYaml(spec, (id) => `./adapters/${id}`);
      const read = parseMergekitYaml(yaml);
      expect(read.models, method).toEqual(['./adapters/lib-1', './adapters/lib-2']);
      expect(read.spec.method, method).toBe(method);
      expect(
        read.spec.adapters.map((a) => [a.weight, a.density]),
        method,
      ).toEqual([
        [0.7, 0.3],
        [[0, 0.5, 1], undefined],
      ]);
      for (const { name, p } of definitions)
        if (p.kind === 'number' && p.mergekit && reads(method, name))
          expect(read.spec[name], `${method} ${name}`).toBe(0.25);
      if (reads(method, 'tiesDivisor')) expect(read.spec.tiesDivisor, method).toBe('weights');
      // What mergekit cannot say is named, not dropped silently: every parameter the method
      // reads that has no mergekit key (TIES's divisor is written as normalize).
      const unsaid = definitions.filter(
        ({ name, p }) =>
          name !== 'tiesDivisor' &&
          reads(method, name) &&
          spec[name] !== undefined &&
          (p.kind !== 'number' || !p.mergekit),
      );
      expect(lost, method).toEqual(unsaid.map(({ p }) => p.label));
    }
  });

  it('names what mergekit cannot say, and refuses a method it has no name for', () => {
    const spec: MergeSpec = {
      method: 'ties_svd',
      adapters: [{ id: 'a', weight: 1 }],
      tiesDivisor: 'count',
      clamp: 0.99,
      lines: { alpha: 1, beta: 0.5 },
    };
    expect(writeMergekitYaml(spec, (id) => id).lost).toEqual(
      expect.arrayContaining(['TIES divisor count', 'the clamp', 'LiNeS']),
    );
    const unnamed = METHOD_NAMES.find((m) => !MERGE_METHODS[m].mergekit);
    if (!unnamed) return;
    expect(() => writeMergekitYaml({ method: unnamed, adapters: [] }, (id) => id)).toThrow(
      new RegExp(`mergekit has no method for ${unnamed}`),
    );
  });
});

describe('the parameter table', () => {
  it.each(definitions)('$name is read by a method, and its default is allowed', ({ name, p }) => {
    expect(METHOD_NAMES.some((m) => reads(m, name))).toBe(true);
    if (p.kind !== 'rank') expect(parameterProblem(name, p.default)).toBeNull();
  });

  it.each(definitions)('$name has its CLI flags, in the usage and the help', ({ name, p }) => {
    const flags = p.kind === 'rank' ? [p.cli, p.energyCli] : [p.cli];
    for (const flag of flags) {
      expect(MERGE_VALUES).toContain(flag);
      expect(MERGE_SUMMARY).toContain(`--${flag} `);
      expect(mergeHelp()).toContain(`--${flag} `);
    }
    const value = p.kind === 'choice' ? p.choices.at(-1)!.value : '3';
    const spec = applyOptions(specFor(MERGE_METHODS.svd), new Map([[p.cli, value]]));
    expect(spec[name]).toBe(p.kind === 'choice' ? value : 3);
  });

  it.each(definitions)(
    '$name has a field on the merge card and goes into the spec',
    ({ name, p }) => {
      for (const method of METHOD_NAMES.filter((m) => reads(m, name))) {
        expect(parameterFields(method).find((f) => f.name === name)?.label).toBe(p.label);
        const settings = { ...DEFAULT_MERGE, method, rankMode: 'fixed' as const };
        expect(methodParameters(settings)).toHaveProperty(name);
      }
      if (p.kind !== 'rank') expect(DEFAULT_MERGE[name]).toBe(p.default);
    },
  );

  it('sets the parameters with a mergekit key from a YAML', () => {
    for (const { name, p } of definitions)
      if (p.kind === 'number' && p.mergekit) {
        const yaml = `merge_method: ties\nmodels: [{ model: a }]\nparameters: { ${p.mergekit}: 0.25 }\n`;
        expect(parseMergekitYaml(yaml).spec[name], name).toBe(0.25);
      }
  });
});
