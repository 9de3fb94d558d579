// docs/merging.md documents every method in one table: this keeps the table true to the code.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MERGE_METHODS } from './spec.ts';

const doc = readFileSync(new URL('../../docs/merging.md', import.meta.url), 'utf8');

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
});
