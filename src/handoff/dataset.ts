// The run's data as JSONL in the layout of Hugging Face datasets (data/train.jsonl,
// data/validation.jsonl), one record per example in the format the studio read, split as the
// studio split it: splitExamples's seeded shuffle depends only on the number of examples, the
// fraction and the seed, so it picks the same examples here without a tokenizer. Only a single
// example is cut by tokens; a single text is cut here at the same share of its characters.
import { parseDataset, splitExamples, type Example, type TokenizedExample } from '../train/data.ts';

export type ExampleKind = Example['kind'];

/** Each kind of example: how the docs name it and its JSONL record (what parseDataset reads). */
export const EXAMPLE_KINDS: {
  [K in ExampleKind]: {
    label: string;
    record: (e: Extract<Example, { kind: K }>) => Record<string, unknown>;
  };
} = {
  text: { label: '"text"', record: (e) => ({ text: e.text }) },
  completion: {
    label: '"prompt" + "completion"',
    record: (e) => ({ prompt: e.prompt, completion: e.completion }),
  },
  chat: { label: '"messages" (chat)', record: (e) => ({ messages: e.messages }) },
};

/** How the validation examples were chosen. */
export type SplitKind =
  /** The studio's own split, example by example. */
  | 'examples'
  /** One text cut at the same share of its characters (the studio cuts its tokens). */
  | 'characters'
  /** No validation: a fraction of 0, or one example too short to cut or not a text. */
  | 'none';

export interface ExportedDataset {
  kind: ExampleKind;
  train: Example[];
  validation: Example[];
  split: SplitKind;
  validationFraction: number;
  /** The seed of the studio's split (the run's seed in the CLI; the Data panel's own in the studio). */
  seed: number;
}

export const TRAIN_FILE = 'data/train.jsonl';
export const VALIDATION_FILE = 'data/validation.jsonl';

export function exportedDataset(
  content: string,
  fileName: string,
  options: { validationFraction: number; seed: number },
): ExportedDataset {
  const examples = parseDataset(content, fileName);
  const kind = examples[0].kind;
  const { validationFraction: fraction, seed } = options;
  const whole = { kind, train: examples, validation: [], split: 'none' as const, seed };
  if (fraction === 0) return { ...whole, validationFraction: fraction };
  if (examples.length === 1) {
    const only = examples[0];
    const cut = only.kind === 'text' ? cutText(only.text, fraction) : null;
    if (!cut) return { ...whole, validationFraction: fraction };
    return {
      kind,
      train: [{ kind: 'text', text: cut[0] }],
      validation: [{ kind: 'text', text: cut[1] }],
      split: 'characters',
      validationFraction: fraction,
      seed,
    };
  }
  // splitExamples keeps the objects it is given: stand-ins find their examples again.
  const standIns: TokenizedExample[] = examples.map(() => ({ ids: [], trained: [] }));
  const chosen = new Set(splitExamples(standIns, fraction, seed).validation);
  return {
    kind,
    train: examples.filter((_, i) => !chosen.has(standIns[i])),
    validation: examples.filter((_, i) => chosen.has(standIns[i])),
    split: 'examples',
    validationFraction: fraction,
    seed,
  };
}

/**
 * A text cut before its last `fraction` of characters, at the nearest whitespace so no word is
 * split; null when either part would be empty.
 */
function cutText(text: string, fraction: number): [string, string] | null {
  const target = Math.round((1 - fraction) * text.length);
  let cut = -1;
  for (let d = 0; d < text.length && cut < 0; d++) {
    for (const at of [target - d, target + d])
      if (cut < 0 && at > 0 && at < text.length && /\s/.test(text[at])) cut = at;
  }
  if (cut < 0) return null;
  const parts: [string, string] = [text.slice(0, cut).trimEnd(), text.slice(cut).trimStart()];
  return parts.every((p) => p !== '') ? parts : null;
}

/** Examples as JSONL, one record a line, in their kind's format. */
export function jsonl(examples: readonly Example[]): string {
  // Each entry reads its own kind; TypeScript cannot tie e.kind to the entry it picks.
  const record = (e: Example) =>
    (EXAMPLE_KINDS[e.kind].record as (e: Example) => Record<string, unknown>)(e);
  return examples.map((e) => JSON.stringify(record(e)) + '\n').join('');
}
