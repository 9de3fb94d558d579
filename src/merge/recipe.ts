// What a merged adapter carries besides its weights: merge_recipe.json (the resolved spec and
// the sources, enough to reproduce the merge) and a README.md model card, as the Hub shows it.
import { cardFrontMatter, fileSafeName, peftLoadLines } from '../adapters/model-card.ts';
import { peftFiles } from '../adapters/peft.ts';
import type { PeftAdapter } from '../adapters/peft-read.ts';
import { errorMessage } from '../errors.ts';
import { FormatError } from '../model/errors.ts';
import type { MergeOutcome } from './merge.ts';
import { MERGE_METHODS, resolveSpec, type MergeSpec, type ResolvedSpec } from './spec.ts';

export const RECIPE_FILE = 'merge_recipe.json';

export interface MergeRecipe {
  /** Which program wrote it, so a reader knows how to replay it. */
  created_with: 'LoRA Studio';
  spec: ResolvedSpec;
  sources: { id: string; name: string; base_model: string | null; rank: number }[];
  result: { rank: number; modules: number; lost_energy: number };
}

function fail(file: string, message: string): never {
  throw new FormatError(file, message);
}

/**
 * A merge_recipe.json read back: its spec checked as a whole (structure, method, every
 * parameter) before any adapter is loaded, so a broken recipe costs nothing.
 */
export function readRecipe(text: string, file: string): MergeSpec {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    fail(file, `is not valid JSON (${errorMessage(e)})`);
  }
  const spec = (json as { spec?: unknown } | null)?.spec;
  if (typeof json !== 'object' || json === null || typeof spec !== 'object' || spec === null)
    fail(file, 'is not a merge recipe: expected an object with a "spec" object');
  const { method, adapters } = spec as { method?: unknown; adapters?: unknown };
  if (typeof method !== 'string') fail(file, 'spec.method must be a merge method name');
  if (!Array.isArray(adapters) || adapters.length === 0)
    fail(file, 'spec.adapters must be a non-empty list of {id, weight}');
  for (const [i, a] of adapters.entries()) {
    const { id, weight } = (a ?? {}) as { id?: unknown; weight?: unknown };
    const weights = Array.isArray(weight) ? (weight as unknown[]) : [weight];
    if (typeof id !== 'string' || !weights.every((w) => typeof w === 'number'))
      fail(file, `spec.adapters[${i}] needs a string id and a number (or list of numbers) weight`);
  }
  try {
    resolveSpec(spec as MergeSpec);
  } catch (e) {
    fail(file, errorMessage(e));
  }
  return spec as MergeSpec;
}

export function mergeRecipe(outcome: MergeOutcome, adapters: readonly PeftAdapter[]): MergeRecipe {
  return {
    created_with: 'LoRA Studio',
    spec: outcome.spec,
    sources: adapters.map((a, i) => ({
      id: outcome.spec.adapters[i].id,
      name: a.name,
      base_model: a.baseModel,
      rank: a.details.rank,
    })),
    result: {
      rank: outcome.adapter.rank,
      modules: outcome.adapter.modules.length,
      lost_energy: outcome.lostEnergy,
    },
  };
}

const weightText = (w: number | number[]) =>
  typeof w === 'number' ? String(w) : `[${w.join(', ')}]`;

/** A Hub-style model card: front matter, what was merged how, and how to load it. */
export function modelCard(recipe: MergeRecipe, name: string): string {
  const { spec, sources, result } = recipe;
  const base = sources.find((s) => s.base_model)?.base_model ?? 'unknown';
  const info = MERGE_METHODS[spec.method];
  const parameters = info.parameters
    .filter((p) => p !== 'rank')
    .map((p) => `${p} = ${JSON.stringify(spec[p])}`);
  return [
    ...cardFrontMatter(base, ['lora', 'merge', 'lora-studio']),
    `# ${name}`,
    '',
    `A LoRA adapter merged in LoRA Studio from ${sources.length} adapter${sources.length === 1 ? '' : 's'} with **${spec.method}**: ${info.summary}`,
    '',
    '| adapter | weight | rank |',
    '|---|---|---|',
    ...sources.map((s, i) => `| ${s.name} | ${weightText(spec.adapters[i].weight)} | ${s.rank} |`),
    '',
    `Result: rank ${result.rank}, ${result.modules} modules` +
      (result.lost_energy > 0
        ? `, ${(100 * result.lost_energy).toFixed(2)} % of ‖ΔW‖² dropped by the output rank.`
        : ', exact.'),
    ...(parameters.length > 0 ? ['', `Parameters: ${parameters.join(', ')}.`] : []),
    '',
    `The whole recipe is in \`${RECIPE_FILE}\`. Load with PEFT:`,
    '',
    ...peftLoadLines(fileSafeName(name)),
  ].join('\n');
}

/** The merged adapter's files: PEFT's two, the recipe and the model card. */
export function mergedFiles(
  outcome: MergeOutcome,
  adapters: readonly PeftAdapter[],
  name: string,
): Map<string, Uint8Array> {
  const recipe = mergeRecipe(outcome, adapters);
  const files = peftFiles(outcome.adapter);
  const encode = (text: string) => new TextEncoder().encode(text);
  files.set(RECIPE_FILE, encode(JSON.stringify(recipe, null, 2) + '\n'));
  files.set('README.md', encode(modelCard(recipe, name)));
  return files;
}
