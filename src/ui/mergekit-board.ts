// The board as a mergekit YAML and back (src/merge/mergekit.ts does the YAML): export names each
// adapter by its library name, import finds each `model:` in the library by its name or its
// folder's last part, and sets the board, the weights and the merge card from the file.
import {
  parseMergekitYaml,
  PARAMETER_NAMES,
  writeMergekitYaml,
  type LibraryItem,
  type MergeSpec,
  type WrittenYaml,
} from '../worker/api.ts';
import type { MergeSettings } from './merge-settings.ts';

export function boardYaml(spec: MergeSpec, items: readonly LibraryItem[]): WrittenYaml {
  return writeMergekitYaml(spec, (id) => items.find((item) => item.id === id)?.name ?? id);
}

/** What a YAML puts on the board: adapters in order with their weights, and the merge card. */
export interface ImportedBoard {
  sources: { id: string; weight: number }[];
  settings: Partial<MergeSettings>;
  /** What the board cannot hold of the file (per-model densities), in words. */
  notes: string[];
}

/** `./adapters/zimmy/` → `zimmy`. */
function lastPart(path: string): string {
  return (
    path
      .replace(/[\\/]+$/, '')
      .split(/[\\/]/)
      .at(-1) ?? path
  );
}

/** The board a mergekit YAML describes; refuses models the library lacks, and weight lists. */
export function importBoardYaml(text: string, items: readonly LibraryItem[]): ImportedBoard {
  const { spec, models } = parseMergekitYaml(text);
  const missing: string[] = [];
  const sources = spec.adapters.flatMap((source, i) => {
    const model = models[i];
    const item =
      items.find((it) => it.name === model) ?? items.find((it) => it.name === lastPart(model));
    if (!item) {
      missing.push(model);
      return [];
    }
    if (typeof source.weight !== 'number')
      throw new RangeError(
        `mergekit config: ${model}'s weight is a list over depth; the board takes one weight per adapter (the CLI merges lists: lora-studio merge --config)`,
      );
    return [{ id: item.id, weight: source.weight }];
  });
  if (missing.length > 0)
    throw new RangeError(
      `mergekit config: not in the library: ${missing.join(', ')} (import them first; the YAML's models are matched by library name or folder name)`,
    );
  const settings: Partial<MergeSettings> = { method: spec.method };
  for (const p of PARAMETER_NAMES) {
    const value = spec[p];
    if (value !== undefined) Object.assign(settings, { [p]: value });
  }
  const notes = spec.adapters.some((a) => a.density !== undefined)
    ? ['per-model densities are not kept: the merge card has one density for all']
    : [];
  return { sources, settings, notes };
}
