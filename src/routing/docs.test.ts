// docs/routing.md describes every routing mode of the table, by its --mode name and its paper.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ROUTING_MODES } from './modes.ts';

const doc = readFileSync(new URL('../../docs/routing.md', import.meta.url), 'utf8');

describe('docs/routing.md', () => {
  it.each(ROUTING_MODES.map((m) => [m.name, m] as const))(
    'has a row for --mode %s',
    (name, mode) => {
      const row = doc.split('\n').find((line) => line.startsWith(`| \`${name}\``));
      expect(row, name).toBeDefined();
      for (const paper of mode.paper.split(';').map((p) => p.split(' (')[0].trim()))
        expect(row, `${name}: ${paper}`).toContain(paper);
    },
  );
});
