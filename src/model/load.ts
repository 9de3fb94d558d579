// A model from a set of files, wherever they come from (dropped in the browser, read from disk
// by the CLI): an HF folder (config.json + safetensors), a llama2.c checkpoint (.bin) or a
// llama.cpp GGUF model (.gguf, which carries its own tokenizer), with the tokenizer found among
// the same files.
import type { ModelConfig } from './config.ts';
import { FormatError } from './errors.ts';
import { loadGgufModel, openGgufWeights } from './gguf/load.ts';
import { openHfFolder, type ModelFile } from './hf-folder.ts';
import { readLlama2c } from './llama2c.ts';
import { readLlama2cTokenizer } from './llama2c-tokenizer.ts';
import { fromLlama2c, hfTokenizer, type TextTokenizer } from './tokenizer.ts';
import type { ModelWeights, WeightSource } from './weights.ts';

export interface LoadedModelFiles {
  /** What the model was loaded as (a file or folder name, a Hub repo id): a run resumes on it. */
  name: string;
  /**
   * The Hub repo the weights came from where `name` is not it: a GGUF file converted from a Hub
   * repo names that repo in its metadata.
   */
  hubId?: string;
  config: ModelConfig;
  weights: ModelWeights;
  tokenizer: TextTokenizer;
}

/**
 * What an adapter trained on the model names as its base (PEFT's base_model_name_or_path, the
 * card's base_model): PEFT loads the base by that id, so the Hub repo where one is known.
 */
export const baseModelId = (model: { name: string; hubId?: string }): string =>
  model.hubId ?? model.name;

/** Whether an adapter's base model id is this model: its name, or the Hub repo it came from. */
export const namesModel = (model: { name: string; hubId?: string }, id: string): boolean =>
  id === model.name || id === model.hubId;

const basename = (path: string) => path.slice(path.lastIndexOf('/') + 1);
const TOKENIZER_FILES = ['tokenizer.json', 'tok512.bin', 'tokenizer.bin'];
/** Where a chat template lives when tokenizer_config.json has none. */
export const CHAT_TEMPLATE_FILE = 'chat_template.jinja';

/** The one .gguf model among the files, or undefined (an HF folder's config.json comes first). */
function ggufFile(files: readonly ModelFile[], name: string): ModelFile | undefined {
  if (files.some((f) => basename(f.name) === 'config.json')) return undefined;
  const found = files.filter((f) => f.name.endsWith('.gguf'));
  if (found.length > 1)
    throw new FormatError(
      name,
      `holds ${found.length} .gguf files (${found.map((f) => basename(f.name)).join(', ')}): give one model file`,
    );
  return found[0];
}

/**
 * The model's architecture among the files (an HF folder, a .bin or a .gguf) and its weights by
 * name, read when asked: an HF folder's a tensor at a time, a .gguf's dequantized a tensor at a
 * time from the file's bytes, a .bin's from the whole file, read once.
 */
export async function openModelWeights(
  files: readonly ModelFile[],
  name = 'model',
): Promise<WeightSource> {
  const byName = new Map(files.map((f) => [basename(f.name), f]));
  if (byName.has('config.json')) return openHfFolder(files);
  const gguf = ggufFile(files, name);
  const checkpoint = files.find(
    (f) => f.name.endsWith('.bin') && !TOKENIZER_FILES.includes(basename(f.name)),
  );
  if (!gguf && !checkpoint) {
    throw new FormatError(
      name,
      'holds neither config.json (a Hugging Face model), a llama.cpp .gguf model nor a llama2.c .bin checkpoint',
    );
  }
  // A GGUF file's weights are dequantized when read: its bytes as stored are the only copy.
  if (gguf) return openGgufWeights(await gguf.bytes(), basename(gguf.name));
  const { config, weights } = readLlama2c(await checkpoint!.bytes(), basename(checkpoint!.name));
  return {
    config,
    names: [...weights.keys()],
    read(weight) {
      const t = weights.get(weight);
      if (!t) return Promise.reject(new FormatError(name, `has no weight ${weight}`));
      return Promise.resolve(t);
    },
  };
}

/** The model's architecture and weights among the files (an HF folder, a .bin or a .gguf). */
export async function loadModelWeights(
  files: readonly ModelFile[],
  name = 'model',
): Promise<{ config: ModelConfig; weights: ModelWeights; hubId?: string }> {
  const opened = await openModelWeights(files, name);
  const weights: ModelWeights = new Map();
  for (const weight of opened.names) weights.set(weight, await opened.read(weight));
  return {
    config: opened.config,
    weights,
    ...(opened.hubId !== undefined && { hubId: opened.hubId }),
  };
}

export async function loadModelFiles(
  files: readonly ModelFile[],
  name = 'model',
): Promise<LoadedModelFiles> {
  const byName = new Map(files.map((f) => [basename(f.name), f]));
  const tokenizerFile = TOKENIZER_FILES.map((f) => byName.get(f)).find((f) => f !== undefined);
  // A GGUF file's own tokenizer, unless a tokenizer was given beside it.
  const gguf = ggufFile(files, name);
  if (gguf && !tokenizerFile)
    return { name, ...loadGgufModel(await gguf.bytes(), basename(gguf.name)) };
  const { config, weights, hubId } = await loadModelWeights(files, name);
  if (!tokenizerFile)
    throw new FormatError(name, `needs its tokenizer (${TOKENIZER_FILES.join(', ')})`);
  return {
    name,
    hubId,
    config,
    weights,
    tokenizer: await loadTokenizer(
      tokenizerFile,
      byName.get('tokenizer_config.json'),
      byName.get(CHAT_TEMPLATE_FILE),
      config,
    ),
  };
}

async function loadTokenizer(
  file: ModelFile,
  configFile: ModelFile | undefined,
  templateFile: ModelFile | undefined,
  config: ModelConfig,
): Promise<TextTokenizer> {
  const fileName = basename(file.name);
  if (!fileName.endsWith('.json')) {
    return fromLlama2c(readLlama2cTokenizer(await file.bytes(), config.vocabSize, fileName));
  }
  const json = async (f: ModelFile): Promise<unknown> => {
    try {
      return JSON.parse(new TextDecoder().decode(await f.bytes()));
    } catch {
      throw new FormatError(basename(f.name), 'is not valid JSON');
    }
  };
  const tokenizerConfig = (configFile ? await json(configFile) : {}) as Record<string, unknown>;
  // Newer checkpoints (SmolLM3, transformers ≥ 4.43 saves) keep the chat template in its own file.
  if (typeof tokenizerConfig.chat_template !== 'string' && templateFile)
    tokenizerConfig.chat_template = new TextDecoder().decode(await templateFile.bytes());
  const tokenizer = hfTokenizer(await json(file), tokenizerConfig, fileName);
  // A tokenizer that can emit ids beyond the model's vocabulary belongs to another model, and so
  // does one covering much less of it. Checkpoints often pad the embedding past the tokenizer
  // (Qwen2.5: 151,936 rows for 151,665 tokens; Phi-3: 32,064 for 32,011): that much is fine.
  const padding = config.vocabSize - tokenizer.vocabSize;
  if (padding < 0 || padding > Math.max(128, 0.02 * config.vocabSize)) {
    throw new FormatError(
      fileName,
      `has ${tokenizer.vocabSize} tokens but the model's vocabulary is ${config.vocabSize}: it belongs to another model`,
    );
  }
  return tokenizer;
}
