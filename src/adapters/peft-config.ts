// An adapter's files as PEFT saves them (docs/design.md §2), parsed once for both readers:
// readPeftAdapter (to apply, merge and train: strict) and readForInspection (to describe:
// tolerant of what the studio cannot apply, such as task heads). Files are recognised by their
// content, not their names: a pickle is refused unopened whatever it is called, and safetensors
// bytes saved as adapter_model.bin are read as what they are.
import { errorMessage } from '../errors.ts';
import { FormatError } from '../model/errors.ts';
import { patternValue, scaling } from './config.ts';
import { peftVariant, VECTORS, type VariantName, type VariantVector } from './variants.ts';

export const CONFIG = 'adapter_config.json';
export const WEIGHTS = 'adapter_model.safetensors';
const LEGACY_WEIGHTS = 'adapter_model.bin';

/** The fields of adapter_config.json the studio uses, checked; `raw` keeps every key. */
export interface AdapterConfig {
  raw: Record<string, unknown>;
  r: number;
  alpha: number;
  rslora: boolean;
  rankPattern: Record<string, number>;
  alphaPattern: Record<string, number>;
  /** The variant its flags say (use_dora). */
  variant: VariantName;
  baseModel: string | null;
  taskType: string | null;
  fanInFanOut: boolean;
  modulesToSave: string[];
}

/** `strict`: refuse what the studio cannot apply (task heads other than CAUSAL_LM). */
export interface ConfigOptions {
  strict: boolean;
}

function numberPattern(config: Record<string, unknown>, key: string): Record<string, number> {
  const value = config[key] ?? {};
  if (typeof value !== 'object' || Array.isArray(value))
    throw new FormatError(CONFIG, `${key} must be an object of module patterns`);
  for (const [pattern, n] of Object.entries(value))
    if (typeof n !== 'number' || !(n > 0))
      throw new FormatError(CONFIG, `${key}["${pattern}"] must be a positive number`);
  return value as Record<string, number>;
}

export function parseAdapterConfig(bytes: Uint8Array, options: ConfigOptions): AdapterConfig {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw new FormatError(CONFIG, `is not valid JSON (${errorMessage(e)})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new FormatError(CONFIG, 'is not a JSON object');
  const raw = parsed as Record<string, unknown>;
  if (raw.peft_type === undefined)
    throw new FormatError(CONFIG, 'has no peft_type; LoRA Studio reads LoRA adapters ("LORA")');
  if (raw.peft_type !== 'LORA')
    throw new FormatError(
      CONFIG,
      `describes a ${JSON.stringify(raw.peft_type)} adapter; only LoRA is supported`,
    );
  const taskType = typeof raw.task_type === 'string' ? raw.task_type : null;
  if (options.strict && taskType !== null && taskType !== 'CAUSAL_LM')
    throw new FormatError(
      CONFIG,
      `describes a ${taskType} adapter; LoRA Studio works with causal language models (CAUSAL_LM)`,
    );
  const r = Number(raw.r);
  const alpha = Number(raw.lora_alpha);
  if (!(Number.isInteger(r) && r >= 1) || !(alpha > 0 && Number.isFinite(alpha)))
    throw new FormatError(CONFIG, 'needs a positive integer r and a positive finite lora_alpha');
  let variant: VariantName;
  try {
    variant = peftVariant(raw);
  } catch (e) {
    throw new FormatError(CONFIG, errorMessage(e));
  }
  const saved = raw.modules_to_save;
  return {
    raw,
    r,
    alpha,
    rslora: raw.use_rslora === true,
    rankPattern: numberPattern(raw, 'rank_pattern'),
    alphaPattern: numberPattern(raw, 'alpha_pattern'),
    variant,
    baseModel: typeof raw.base_model_name_or_path === 'string' ? raw.base_model_name_or_path : null,
    taskType,
    fanInFanOut: raw.fan_in_fan_out === true,
    modulesToSave: Array.isArray(saved) ? saved.map(String) : [],
  };
}

/** A module's rank, alpha and scaling as PEFT applies them; checks the stored rank. */
export function moduleScaling(
  config: AdapterConfig,
  path: string,
  storedRank: number,
): { rank: number; alpha: number; scale: number } {
  const rank = patternValue(config.rankPattern, path) ?? config.r;
  if (storedRank !== rank)
    throw new FormatError(
      WEIGHTS,
      `${path}.lora_A has rank ${storedRank}; the config says ${rank}`,
    );
  const alpha = patternValue(config.alphaPattern, path) ?? config.alpha;
  return { rank, alpha, scale: scaling(alpha, rank, config.rslora) };
}

const looksLikePickle = (b: Uint8Array) =>
  // torch.save's zip archive ("PK\3\4"), or a bare pickle (PROTO opcode 0x80, protocol 2–5).
  (b[0] === 0x50 && b[1] === 0x4b && b[2] === 0x03 && b[3] === 0x04) ||
  (b[0] === 0x80 && b[1] >= 2 && b[1] <= 5);

/** safetensors begins with a u64 header length whose JSON opens with "{". */
const looksLikeSafetensors = (b: Uint8Array) => b.byteLength >= 9 && b[8] === 0x7b;

/**
 * The config and weight bytes of an adapter's files (by file name), or a FormatError saying
 * what is missing or refused. A pickle is never opened.
 */
export function adapterFiles(
  files: ReadonlyMap<string, Uint8Array>,
  name: string,
  options: ConfigOptions,
): { config: AdapterConfig; weights: Uint8Array } {
  const legacy = files.get(LEGACY_WEIGHTS);
  let weights = files.get(WEIGHTS);
  if (!weights && legacy) {
    if (looksLikeSafetensors(legacy) && !looksLikePickle(legacy)) weights = legacy;
    else
      throw new FormatError(
        LEGACY_WEIGHTS,
        looksLikePickle(legacy)
          ? 'is a PyTorch pickle, which LoRA Studio never opens (unpickling can run code); convert it with PEFT: `PeftModel.from_pretrained(base, dir).save_pretrained(out, safe_serialization=True)`'
          : 'is neither safetensors nor a PyTorch pickle',
      );
  }
  const configBytes = files.get(CONFIG);
  if (!configBytes || !weights)
    throw new FormatError(name, `needs ${CONFIG} and ${WEIGHTS} together`);
  return { config: parseAdapterConfig(configBytes, options), weights };
}

/** What a tensor of adapter_model.safetensors is, by its key. */
export type TensorRole =
  | { kind: 'factor'; path: string; which: 'A' | 'B'; embedding: boolean }
  /** A vector a variant adds to a module (DoRA's magnitude). */
  | { kind: 'vector'; path: string; vector: VariantVector }
  /** Anything else, e.g. a whole tensor of modules_to_save, by its name without PEFT's prefixes. */
  | { kind: 'whole'; name: string };

/** `…q_proj.lora_A.weight`, `…lora_B.default.weight`, `…embed_tokens.lora_embedding_A`. */
const FACTOR = /^(?:base_model\.model\.)?(.+?)\.lora_(embedding_)?([AB])(?:\.[\w-]+)*$/;
/** A variant's vector: `…q_proj.lora_magnitude_vector`, possibly followed by more parts. */
const VECTOR = new RegExp(
  `^(?:base_model\\.model\\.)?(.+?)\\.(${VECTORS.map((v) => v.key).join('|')})(?:\\.[\\w-]+)*$`,
);

export function tensorRole(key: string): TensorRole {
  const factor = FACTOR.exec(key);
  if (factor)
    return {
      kind: 'factor',
      path: factor[1],
      which: factor[3] as 'A' | 'B',
      embedding: factor[2] === 'embedding_',
    };
  const vector = VECTOR.exec(key);
  const known = VECTORS.find((v) => v.key === vector?.[2]);
  if (vector && known) return { kind: 'vector', path: vector[1], vector: known };
  return {
    kind: 'whole',
    name: key.replace(/^base_model\.model\./, '').replace(/\.modules_to_save\.[\w-]+/, ''),
  };
}
