// docs/models.md lists the families and the Hub presets in tables: this keeps them true to the
// code (families.ts, the family files' llama.cpp names, src/ui/hub-presets.ts) and to the limits
// it quotes.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FIXTURES } from '../testing/fixtures.ts';
import { HUB_PRESETS, presetSize } from '../ui/hub-presets.ts';
import { FAMILIES } from './families.ts';
import { MAX_CONTEXT } from './families/common.ts';
import { ROPE_TYPES } from './rope-scaling.ts';

const doc = readFileSync(new URL('../../docs/models.md', import.meta.url), 'utf8');

/** The rows of the table whose header starts with `| first`, as trimmed cells (no outer pipes). */
function table(first: string): string[][] {
  const lines = doc.split('\n');
  const start = lines.findIndex((l) => new RegExp(`^\\| ${first} +\\|`).test(l));
  expect(start, `a table headed "${first}"`).toBeGreaterThanOrEqual(0);
  const end = lines.findIndex((l, i) => i > start && !l.startsWith('|'));
  return lines.slice(start + 2, end).map((r) =>
    r
      .split('|')
      .slice(1, -1)
      .map((c) => c.trim()),
  );
}

const code = (words: readonly string[]) => words.map((w) => `\`${w}\``).join(', ');

describe('docs/models.md', () => {
  it('has one row per family, with its model_types and llama.cpp architecture name', () => {
    const rows = table('family');
    expect(rows.map((r) => r[0])).toEqual(FAMILIES.map((f) => `\`${f.name}\``));
    for (const [i, family] of FAMILIES.entries()) {
      expect(rows[i][1], family.name).toBe(code(family.modelTypes));
      expect(rows[i][8], family.name).toBe(`\`${family.gguf.arch}\``);
    }
  });

  it('lists the Hub presets as src/ui/hub-presets.ts has them, one or more per family', () => {
    const rows = table('repo');
    expect(rows).toEqual(
      HUB_PRESETS.map((p) => [
        `\`${p.repo}\``,
        `\`${p.family}\``,
        p.parameters,
        presetSize(p),
        p.licence,
        p.gated ? 'yes' : '',
      ]),
    );
    // Families the engine runs, every one of them: each can be tried from the panel.
    expect(new Set(HUB_PRESETS.map((p) => p.family))).toEqual(new Set(FAMILIES.map((f) => f.name)));
  });

  it('quotes the context cap and the RoPE scaling types the code has', () => {
    expect(doc).toContain(`at most ${MAX_CONTEXT.toLocaleString('en-US')} positions`);
    const scalings = doc.split('\n').find((l) => l.includes('**RoPE scaling types**')) ?? '';
    for (const type of ROPE_TYPES) expect(scalings).toContain(`\`${type}\``);
  });

  it('checks each family against reference checkpoints that exist', () => {
    const named = [...doc.matchAll(/`arch\/([\w-]+)`/g)].map((m) => m[1]);
    expect(named.length).toBeGreaterThan(0);
    expect(readdirSync(`${FIXTURES}models/arch`)).toEqual(expect.arrayContaining(named));
  });
});
