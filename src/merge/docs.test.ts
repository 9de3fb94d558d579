// docs/merging.md documents every method and every parameter in tables: this keeps them true to
// the code (methods.ts, parameters.ts).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MERGEKIT_METHODS } from './mergekit.ts';
import type { MethodFamily } from './methods.ts';
import {
  intervalText,
  MERGE_PARAMETERS,
  PARAMETER_NAMES,
  type ParameterDefinition,
} from './parameters.ts';
import { MERGE_METHODS } from './spec.ts';

const doc = readFileSync(new URL('../../docs/merging.md', import.meta.url), 'utf8');

/** The rows of the table whose header starts with `| first`, as trimmed cells. */
function table(first: string): string[][] {
  const lines = doc.split('\n');
  const start = lines.findIndex((l) => new RegExp(`^\\| ${first} +\\|`).test(l));
  const end = lines.findIndex((l, i) => i > start && !l.startsWith('|'));
  return lines.slice(start + 2, end).map((r) => r.split('|').map((c) => c.trim()));
}

const KIND: Record<MethodFamily, string> = {
  exact: 'low-rank (no m×n)',
  factor: 'A and B separately: approximate',
  dense: 'dense ΔW → SVD',
};

const code = (words: readonly string[]) => words.map((w) => `\`${w}\``).join(', ');

/** The parameter table's row for `p`, as the code has it; the name plain, unlike a method's. */
function parameterRow(name: string, p: ParameterDefinition): string[] {
  if (p.kind === 'rank')
    return [
      name,
      '',
      'integer ≥ 1, or `{ "energy": F }`, 0 < F ≤ 1',
      code([`--${p.cli}`, `--${p.energyCli}`]),
      '',
      p.help,
    ];
  if (p.kind === 'choice')
    return [
      name,
      `\`${p.default}\``,
      code(p.choices.map((c) => c.value)),
      code([`--${p.cli}`]),
      '',
      p.help,
    ];
  const values = p.range ? intervalText(p.range) : p.integer ? 'integer' : 'any number';
  return [
    name,
    String(p.default),
    values,
    code([`--${p.cli}`]),
    p.mergekit ? `\`${p.mergekit}\`` : '',
    p.help,
  ];
}

describe('docs/merging.md', () => {
  it('has one row per method with its parameters and summary', () => {
    const rows = doc.split('\n').filter((line) => line.startsWith('| `'));
    expect(rows.map((r) => /^\| `(\w+)`/.exec(r)?.[1])).toEqual(Object.keys(MERGE_METHODS));
    for (const [name, info] of Object.entries(MERGE_METHODS)) {
      const row = rows.find((r) => r.startsWith(`| \`${name}\``)) ?? '';
      const cells = row.split('|').map((c) => c.trim());
      expect(cells[2], name).toBe(info.peft ? 'yes' : '');
      expect(cells[4], name).toBe(info.parameters.map((p) => `\`${p}\``).join(', '));
      expect(cells[5], name).toBe(info.summary);
    }
  });

  it("gives each method's kind", () => {
    const rows = table('method');
    expect(rows.map((r) => r[1])).toEqual(Object.keys(MERGE_METHODS).map((m) => `\`${m}\``));
    for (const [i, info] of Object.values(MERGE_METHODS).entries())
      expect(rows[i][3], info.name).toBe(KIND[info.family]);
  });

  it('has one row per parameter: default, values, CLI flag, mergekit key and help', () => {
    const rows = table('parameter');
    expect(rows.map((r) => r.slice(1, -1))).toEqual(
      PARAMETER_NAMES.map((name) => parameterRow(name, MERGE_PARAMETERS[name])),
    );
  });

  it('names every mergekit merge_method the reader takes', () => {
    for (const name of MERGEKIT_METHODS.keys()) expect(doc).toContain(`\`${name}\``);
  });
});
