// The board to mergekit YAML and back: library names in the file, models found by name or
// folder, the merge card's method and parameters set, what the board cannot hold refused or said.
import { describe, expect, it } from 'vitest';
import type { LibraryItem, MergeSpec } from '../worker/api.ts';
import { boardYaml, importBoardYaml } from './mergekit-board.ts';

const items = [
  { id: 'lib-1', name: 'zimmy' },
  { id: 'lib-2', name: 'snorp' },
] as LibraryItem[];

describe('mergekit YAML on the board', () => {
  it('exports the board under library names, and imports it back as the same board', () => {
    const spec: MergeSpec = {
      method: 'ties_svd',
      adapters: [
        { id: 'lib-2', weight: 0.6 },
        { id: 'lib-1', weight: 1.2 },
      ],
      density: 0.3,
      tiesDivisor: 'weights',
    };
    const { yaml } = boardYaml(spec, items);
    expect(yaml).toMatch(/merge_method: ties/);
    expect(yaml).toMatch(/model: snorp[\s\S]*model: zimmy/);
    const board = importBoardYaml(yaml, items);
    expect(board.sources).toEqual([
      { id: 'lib-2', weight: 0.6 },
      { id: 'lib-1', weight: 1.2 },
    ]);
    expect(board.settings).toMatchObject({
      method: 'ties_svd',
      density: 0.3,
      tiesDivisor: 'weights',
    });
    expect(board.notes).toEqual([]);
  });

  it('finds models by their folder name, and says what the board cannot hold', () => {
    const yaml = `merge_method: dare_linear
models:
  - model: ./adapters/zimmy/
    parameters: { weight: 0.5, density: 0.2 }
  - model: snorp
`;
    const board = importBoardYaml(yaml, items);
    expect(board.sources.map((s) => s.id)).toEqual(['lib-1', 'lib-2']);
    expect(board.notes.join()).toMatch(/per-model densities are not kept/);
  });

  it('refuses models the library lacks and weight lists, naming them', () => {
    const missing = 'merge_method: ties\nmodels: [{ model: ./a/blorp }, { model: zimmy }]\n';
    expect(() => importBoardYaml(missing, items)).toThrow(/not in the library: \.\/a\/blorp/);
    const list = 'merge_method: ties\nmodels: [{ model: zimmy, parameters: { weight: [0, 1] } }]\n';
    expect(() => importBoardYaml(list, items)).toThrow(/a list over depth; the board takes one/);
  });
});
