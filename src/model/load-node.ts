import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { ModelConfig } from './config.ts';
import { FormatError } from './errors.ts';
import { folderFiles } from './files-node.ts';
import { loadHfFolder } from './hf-folder.ts';
import { readLlama2c } from './llama2c.ts';
import { readLlama2cTokenizer } from './llama2c-tokenizer.ts';
import { fromLlama2c, hfTokenizer, type TextTokenizer } from './tokenizer.ts';
import type { ModelWeights } from './weights.ts';

export interface LoadedFiles {
  name: string;
  config: ModelConfig;
  weights: ModelWeights;
  tokenizer: TextTokenizer;
}

/**
 * A model from disk: an HF folder (config.json + safetensors) or a llama2.c checkpoint. The
 * tokenizer is `tokenizerPath`, or the first of tokenizer.json, tok512.bin, tokenizer.bin found
 * in the folder (beside the checkpoint for llama2.c).
 */
export async function loadModelFromPath(
  path: string,
  tokenizerPath?: string,
): Promise<LoadedFiles> {
  const info = await stat(path).catch(() => null);
  if (!info) throw new FormatError(path, 'does not exist');
  const { config, weights } = info.isDirectory()
    ? await loadHfFolder(await folderFiles(path))
    : readLlama2c(new Uint8Array(await readFile(path)), basename(path));
  const folder = info.isDirectory() ? path : dirname(path);
  const candidates = tokenizerPath
    ? [tokenizerPath]
    : ['tokenizer.json', 'tok512.bin', 'tokenizer.bin'].map((f) => join(folder, f));
  for (const candidate of candidates) {
    const bytes = await readFile(candidate).catch(() => null);
    if (bytes)
      return {
        name: basename(path),
        config,
        weights,
        tokenizer: await tokenizerFrom(candidate, bytes, config),
      };
  }
  throw new FormatError(
    path,
    `needs its tokenizer: pass --tokenizer (looked for ${candidates.join(', ')})`,
  );
}

async function tokenizerFrom(
  path: string,
  bytes: Buffer,
  config: ModelConfig,
): Promise<TextTokenizer> {
  if (!path.endsWith('.json')) {
    return fromLlama2c(
      readLlama2cTokenizer(new Uint8Array(bytes), config.vocabSize, basename(path)),
    );
  }
  const parse = (text: string, file: string): unknown => {
    try {
      return JSON.parse(text);
    } catch {
      throw new FormatError(file, 'is not valid JSON');
    }
  };
  const configFile = join(dirname(path), 'tokenizer_config.json');
  const tokenizerConfig = await readFile(configFile, 'utf8').then(
    (t) => parse(t, configFile),
    () => ({}),
  );
  const tokenizer = hfTokenizer(
    parse(bytes.toString('utf8'), path),
    tokenizerConfig,
    basename(path),
  );
  // A tokenizer that can emit ids beyond the model's vocabulary belongs to another model.
  if (tokenizer.vocabSize > config.vocabSize) {
    throw new FormatError(
      basename(path),
      `has ${tokenizer.vocabSize} tokens but the model's vocabulary is ${config.vocabSize}: it belongs to another model`,
    );
  }
  return tokenizer;
}
