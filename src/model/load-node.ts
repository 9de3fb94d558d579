import { readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
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
 * A model from disk: an HF folder (config.json, safetensors, tokenizer.json) or a llama2.c
 * checkpoint with its tokenizer (`tokenizerPath`, default tok512.bin / tokenizer.bin beside it).
 */
export async function loadModelFromPath(
  path: string,
  tokenizerPath?: string,
): Promise<LoadedFiles> {
  const info = await stat(path).catch(() => null);
  if (!info) throw new FormatError(path, 'does not exist');
  if (info.isDirectory()) {
    const files = await folderFiles(path);
    const { config, weights } = await loadHfFolder(files);
    const json = async (name: string) =>
      JSON.parse(await readFile(join(path, name), 'utf8')) as unknown;
    const tokenizerJson = await json(tokenizerPath ?? 'tokenizer.json').catch(() => {
      throw new FormatError(
        join(path, 'tokenizer.json'),
        'is missing: the folder needs its tokenizer',
      );
    });
    const tokenizerConfig = await json('tokenizer_config.json').catch(() => ({}));
    return {
      name: basename(path),
      config,
      weights,
      tokenizer: checked(hfTokenizer(tokenizerJson, tokenizerConfig), config),
    };
  }
  const { config, weights } = readLlama2c(new Uint8Array(await readFile(path)), basename(path));
  const candidates = tokenizerPath
    ? [tokenizerPath]
    : ['tok512.bin', 'tokenizer.bin'].map((f) => join(path, '..', f));
  for (const candidate of candidates) {
    const bytes = await readFile(candidate).catch(() => null);
    if (bytes) {
      const tokenizer = fromLlama2c(
        readLlama2cTokenizer(new Uint8Array(bytes), config.vocabSize, basename(candidate)),
      );
      return { name: basename(path), config, weights, tokenizer };
    }
  }
  throw new FormatError(
    path,
    `needs its tokenizer: pass --tokenizer (looked for ${candidates.join(', ')})`,
  );
}

/** A tokenizer that can emit ids beyond the model's vocabulary belongs to another model. */
function checked(tokenizer: TextTokenizer, config: ModelConfig): TextTokenizer {
  if (tokenizer.vocabSize > config.vocabSize) {
    throw new FormatError(
      'tokenizer.json',
      `has ${tokenizer.vocabSize} tokens but the model's vocabulary is ${config.vocabSize}: it belongs to another model`,
    );
  }
  return tokenizer;
}
