// What an adapter's push to the Hub uploads: its PEFT files, the model card (README.md) with a
// valid `base_model` in its front matter (the Hub links the adapter to that model's page), the
// merge recipe when it has one, and a GGUF LoRA when given. The card's base_model is kept when it
// is a Hub id; where it is missing or not a Hub id, it is filled from adapter_config.json's
// base_model_name_or_path when that is one, or from the id the user gives; else the push is
// refused. An adapter without a card gets a short one. No engine code: the page's main thread
// runs this (the CLI checks the PEFT files with readPeftAdapter first; the studio's library
// checked them on import).
import { isDocument, isScalar, isSeq, parseDocument } from 'yaml';
import { cardFrontMatter, peftLoadLines } from '../adapters/model-card.ts';
import { HubPushError, parseRepoId, type PushFile } from './push.ts';
import { isHubRepoId } from './repo-id.ts';

export const CONFIG_FILE = 'adapter_config.json';
export const CARD_FILE = 'README.md';
export const RECIPE_FILE = 'merge_recipe.json';
/** The weights, in the order PEFT looks for them (a .bin the CLI reads only as safetensors). */
export const WEIGHT_FILES = ['adapter_model.safetensors', 'adapter_model.bin'] as const;
/** Every file of an adapter folder a push takes, in upload order. */
export const ADAPTER_UPLOAD_FILES = [CONFIG_FILE, ...WEIGHT_FILES, CARD_FILE, RECIPE_FILE];

export interface AdapterUploadOptions {
  /** Where it goes (`user/name`): the new card's title and loading example name it. */
  repo: string;
  /** The card's base_model, replacing the card's and the config's. */
  baseModel?: string;
  /** A llama.cpp GGUF LoRA to push beside the PEFT files. */
  gguf?: { name: string; bytes: Uint8Array };
}

export interface AdapterUpload {
  files: PushFile[];
  /** The card's base_model(s) as pushed. */
  baseModel: string[];
  /** What happened to the card: pushed as it was, base_model filled in, or written anew. */
  card: 'kept' | 'base_model filled' | 'written';
}

/** A card's YAML front matter: `---` lines around it at the very start (possibly empty). */
const FRONT_MATTER = /^---[ \t]*\r?\n(?:([\s\S]*?)\r?\n)?---[ \t]*(?:\r?\n|$)/;
/** The YAML between the lines, '' for empty front matter (the group does not take part). */
const yamlOf = (match: RegExpExecArray) => (match[1] as string | undefined) ?? '';
const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** base_model_name_or_path of adapter_config.json, or null. */
function configBaseModel(files: ReadonlyMap<string, Uint8Array>): string | null {
  const bytes = files.get(CONFIG_FILE);
  if (!bytes) return null;
  try {
    const config = JSON.parse(decoder.decode(bytes)) as { base_model_name_or_path?: unknown };
    const base = config.base_model_name_or_path;
    return typeof base === 'string' ? base : null;
  } catch {
    return null;
  }
}

/** The base_model values of a card's front matter (a string or a list), or [] without any. */
export function cardBaseModels(card: string): string[] {
  const match = FRONT_MATTER.exec(card);
  if (!match) return [];
  const doc = parseDocument(yamlOf(match));
  if (doc.errors.length > 0 || !isDocument(doc)) return [];
  const node = doc.get('base_model', true);
  if (isScalar(node)) return [String(node.value)];
  if (isSeq(node)) return node.items.map((item) => String(isScalar(item) ? item.value : item));
  return [];
}

/** The card with base_model set to `id`: its front matter edited, or one put before it. */
function withBaseModel(card: string, id: string): string {
  const match = FRONT_MATTER.exec(card);
  if (!match) return [...cardFrontMatter(id, ['lora', 'lora-studio']), card].join('\n');
  const doc = parseDocument(yamlOf(match));
  if (doc.errors.length > 0)
    throw new HubPushError(
      `${CARD_FILE}'s front matter is not valid YAML (${doc.errors[0].message.split('\n')[0]}); fix it or remove the card`,
    );
  doc.set('base_model', id);
  return `---\n${doc.toString().trimEnd()}\n---\n${card.slice(match[0].length)}`;
}

function newCard(repo: string, base: string): string {
  return [
    ...cardFrontMatter(base, ['lora', 'lora-studio']),
    `# ${parseRepoId(repo).name}`,
    '',
    `A LoRA adapter for ${base}, made with LoRA Studio. Load with PEFT:`,
    '',
    ...peftLoadLines(repo),
  ].join('\n');
}

/**
 * The files to push for an adapter given by its files (a folder's, or the studio library's), in
 * upload order, with the card's base_model made valid. Refuses in one line (HubPushError) an
 * adapter without its config or weights, a GGUF that is not named .gguf, and a card whose
 * base_model cannot be made a Hub id.
 */
export function adapterUpload(
  files: ReadonlyMap<string, Uint8Array>,
  options: AdapterUploadOptions,
): AdapterUpload {
  parseRepoId(options.repo);
  if (!files.has(CONFIG_FILE))
    throw new HubPushError(`the adapter has no ${CONFIG_FILE}: push a PEFT adapter folder`);
  if (!WEIGHT_FILES.some((w) => files.has(w)))
    throw new HubPushError(`the adapter has no ${WEIGHT_FILES[0]}: push a PEFT adapter folder`);
  if (options.baseModel !== undefined && !isHubRepoId(options.baseModel))
    throw new HubPushError(
      `the base model "${options.baseModel}" is not a Hub model id (owner/name)`,
    );

  const fromConfig = configBaseModel(files);
  const cardBytes = files.get(CARD_FILE);
  const cardText = cardBytes ? decoder.decode(cardBytes) : null;
  const inCard = cardText === null ? [] : cardBaseModels(cardText);
  const cardValid = inCard.length > 0 && inCard.every(isHubRepoId);
  let card: AdapterUpload['card'] = 'kept';
  let baseModel = inCard;
  let text = cardText;
  const fill =
    options.baseModel ??
    (cardValid ? undefined : fromConfig !== null && isHubRepoId(fromConfig) ? fromConfig : null);
  if (fill === null) {
    const named = [...new Set([...inCard, ...(fromConfig === null ? [] : [fromConfig])])];
    throw new HubPushError(
      `${named.length > 0 ? `the base model ${named.map((n) => `"${n}"`).join(', ')} is not a Hub model id (owner/name)` : 'nothing names the base model'}: the Hub's model card needs base_model; name it (${CARD_FILE}'s base_model, adapter_config.json's base_model_name_or_path, or the base model option) as the Hub repo the adapter was trained on`,
    );
  }
  if (fill !== undefined && !(inCard.length === 1 && inCard[0] === fill)) {
    text = cardText === null ? newCard(options.repo, fill) : withBaseModel(cardText, fill);
    card = cardText === null ? 'written' : 'base_model filled';
    baseModel = [fill];
  }

  const all = new Map(files);
  if (text !== null && text !== cardText) all.set(CARD_FILE, encoder.encode(text));
  const order = new Map(ADAPTER_UPLOAD_FILES.map((name, i) => [name, i]));
  const rank = (name: string) => order.get(name) ?? order.size;
  const upload: PushFile[] = [...all]
    .sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b))
    .map(([path, bytes]) => ({ path, bytes }));
  if (options.gguf) {
    const name = options.gguf.name.split(/[\\/]/).pop() ?? '';
    if (!/^[\w.-]+\.gguf$/i.test(name))
      throw new HubPushError(`"${options.gguf.name}" is not a .gguf file name`);
    if (files.has(name)) throw new HubPushError(`${name} is among the adapter's files already`);
    upload.push({ path: name, bytes: options.gguf.bytes });
  }
  return { files: upload, baseModel, card };
}
