// Every way an adapted module can combine A and B with its frozen weight, described once
// (docs/design.md §3): plain LoRA adds s·B·A; DoRA (Liu et al. 2024, PEFT's use_dora) rescales
// each output row of W + s·B·A to a trained magnitude. The Train panel's choices, the CLI's
// --variant (and --dora), the model card, PEFT's config flag and extra tensors, and the answers of
// merging, comparison, inspection and GGUF export all come from VARIANTS. What a variant does to
// the numbers lives in variants/<name>.ts (its engine, listed in variants/engine.ts). This table
// imports no code at run time: the UI bundles it for its choices and must stay free of GPU code.

/**
 * The per-module vectors variants train beside A and B, by field (each variant's `vectors` say
 * which it has): DoRA's magnitude m [out]. On the host as Float32Array, on the GPU as tensors.
 */
export interface VariantVectors<T = Float32Array> {
  magnitude?: T;
}

export type VectorField = keyof VariantVectors;

/** A vector a variant adds to every module, one value per output row, as PEFT stores it. */
export interface VariantVector {
  field: VectorField;
  /** PEFT's tensor name after the module path (`<path>.lora_magnitude_vector`). */
  key: string;
  /** What the values are, as messages name them. */
  description: string;
}

/** Yes, or why not (the clause a message completes: "…adapter, whose ΔW …"). */
export type Support = true | { refused: string };

export interface VariantEntry {
  /** The --variant value and the name a run saves (LoraSpec.variant). */
  name: string;
  /** As the docs, the init study and messages name it (no commas: init-study --only splits). */
  shortName: string;
  /** The Train panel's option. */
  label: string;
  /** What it does, in one line: the Train panel's hint. */
  explanation: string;
  /** adapter_config.json's flag that says this variant (use_dora); null for the one none says. */
  peftFlag: string | null;
  vectors: readonly VariantVector[];
  /** Whether an embedding LoRA (lora_embedding_A/B) may be of this variant. */
  embeddings: boolean;
  /** Whether merges may combine its modules as ΔW = s·B·A. */
  mergeable: Support;
  /** Whether ΔW follows from the factors alone: comparisons and inspection's ‖ΔW‖ need it. */
  deltaFromFactors: Support;
  /** Whether a llama.cpp GGUF LoRA can carry it. */
  gguf: Support;
  /** How the library's chip and the model card mark an adapter of this variant; null: unmarked. */
  tag: { text: string; title: string } | null;
}

export const VARIANTS = [
  {
    name: 'lora',
    shortName: 'LoRA',
    label: 'LoRA',
    explanation: 'Adds s·B·A to each adapted weight.',
    peftFlag: null,
    vectors: [],
    embeddings: true,
    mergeable: true,
    deltaFromFactors: true,
    gguf: true,
    tag: null,
  },
  {
    name: 'dora',
    shortName: 'DoRA',
    label: 'DoRA (weight-decomposed)',
    explanation:
      "Also trains a magnitude per output row of W + s·B·A; exports with lora_magnitude_vector, as PEFT's use_dora.",
    peftFlag: 'use_dora',
    vectors: [{ field: 'magnitude', key: 'lora_magnitude_vector', description: 'DoRA magnitudes' }],
    embeddings: false,
    mergeable: { refused: 'ΔW is not a low-rank product' },
    deltaFromFactors: { refused: 'ΔW depends on the base weights' },
    gguf: { refused: "llama.cpp's LoRA format has no magnitude vectors" },
    tag: {
      text: 'DoRA',
      title:
        "Weight-decomposed LoRA: magnitude vectors rescale the adapted weights' rows; applied exactly",
    },
  },
] as const satisfies readonly VariantEntry[];

/** A --variant value (LoraSpec.variant, AdapterDetails.variant). */
export type VariantName = (typeof VARIANTS)[number]['name'];

/** What a spec without a variant means, and what adapter_config.json says without a flag. */
export const PLAIN_VARIANT: VariantName = 'lora';

/** The names as the CLI's help lists them. */
export const VARIANT_NAMES: readonly VariantName[] = VARIANTS.map((e) => e.name);

export function parseVariant(value: string): VariantName {
  const entry = VARIANTS.find((e) => e.name === value);
  if (!entry) throw new RangeError(`unknown variant "${value}": use ${VARIANT_NAMES.join(', ')}`);
  return entry.name;
}

/** The table's entry for a variant; plain LoRA when none is named. */
export function variantEntry(name: VariantName = PLAIN_VARIANT): VariantEntry {
  const entry = VARIANTS.find((e) => e.name === name);
  if (!entry) throw new RangeError(`unknown variant "${name}"`);
  return entry;
}

/**
 * A record saved before variants had names (a run's LoRA settings, a library entry's details)
 * said DoRA by `dora: true`: the same record with its variant named instead.
 */
export function withVariantName<T extends { variant?: VariantName; dora?: boolean }>(
  record: T,
): Omit<T, 'dora'> & { variant: VariantName } {
  const { dora, ...rest } = record;
  return { ...rest, variant: record.variant ?? (dora === true ? 'dora' : PLAIN_VARIANT) };
}

/** The variant adapter_config.json says by its flags (use_dora), or a message saying why none. */
export function peftVariant(config: Readonly<Record<string, unknown>>): VariantName {
  const flagged = VARIANTS.filter((e) => e.peftFlag !== null && config[e.peftFlag] === true);
  if (flagged.length > 1)
    throw new RangeError(
      `says ${flagged.map((e) => e.peftFlag).join(' and ')}: an adapter has one variant`,
    );
  return flagged.at(0)?.name ?? PLAIN_VARIANT;
}

/** adapter_config.json's flags for a variant: every variant's, true for its own. */
export function peftFlags(variant: VariantName = PLAIN_VARIANT): Record<string, boolean> {
  const flags: Record<string, boolean> = {};
  for (const e of VARIANTS) if (e.peftFlag !== null) flags[e.peftFlag] = e.name === variant;
  return flags;
}

/** The variant and vector a PEFT tensor key ending (`lora_magnitude_vector`) belongs to. */
export function vectorOwner(key: string): { entry: VariantEntry; vector: VariantVector } | null {
  for (const entry of VARIANTS as readonly VariantEntry[])
    for (const vector of entry.vectors) if (vector.key === key) return { entry, vector };
  return null;
}

/** Every variant's vectors, to recognise them among an adapter's tensors and gradients. */
export const VECTORS: readonly VariantVector[] = (VARIANTS as readonly VariantEntry[]).flatMap(
  (e) => e.vectors,
);

function refusal(support: Support, message: (reason: string) => string): string | null {
  return support === true ? null : message(support.refused);
}

/** Why merge refuses an adapter of this variant, by name; null when it merges. */
export function mergeRefusal(adapter: string, variant: VariantName): string | null {
  const { shortName, mergeable } = variantEntry(variant);
  return refusal(
    mergeable,
    (why) =>
      `merge: ${adapter} is a ${shortName} adapter, whose ${why}; merging ${shortName} is not supported yet`,
  );
}

/** Why compare refuses an adapter of this variant, by name; null when it compares. */
export function compareRefusal(adapter: string, variant: VariantName): string | null {
  const { shortName, deltaFromFactors } = variantEntry(variant);
  return refusal(
    deltaFromFactors,
    (why) =>
      `compare: ${adapter} is a ${shortName} adapter, whose ${why}; comparing ${shortName} is not supported yet`,
  );
}

/** Inspection's note when it gives no ‖ΔW‖ for this variant; null when it does. */
export function deltaFiguresNote(variant: VariantName): string | null {
  const { shortName, deltaFromFactors } = variantEntry(variant);
  return refusal(
    deltaFromFactors,
    (why) => `${shortName}: ${why}, so ‖ΔW‖ and effective ranks are not given`,
  );
}

/** Why the GGUF export refuses an adapter of this variant, by name; null when it exports. */
export function ggufRefusal(adapter: string, variant: VariantName): string | null {
  const { shortName, gguf } = variantEntry(variant);
  return refusal(gguf, (why) => `${adapter} is a ${shortName} adapter: ${why}`);
}
