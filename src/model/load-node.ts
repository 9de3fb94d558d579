import { stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { FormatError } from './errors.ts';
import { diskFile, folderFiles } from './files-node.ts';
import type { ModelFile } from './hf-folder.ts';
import type { WeightSource } from './weights.ts';
import {
  CHAT_TEMPLATE_FILE,
  loadModelFiles,
  loadModelWeights,
  openModelWeights,
  type LoadedModelFiles,
} from './load.ts';

/**
 * A model from disk: an HF folder, a llama2.c checkpoint whose tokenizer sits beside it, or a
 * GGUF model file (its tokenizer inside it). `tokenizerPath` overrides the tokenizer found with
 * the model.
 */
export async function loadModelFromPath(
  path: string,
  tokenizerPath?: string,
): Promise<LoadedModelFiles> {
  const info = await stat(path).catch(() => null);
  if (!info) throw new FormatError(path, 'does not exist');
  let files = info.isDirectory()
    ? await folderFiles(path)
    : path.endsWith('.gguf')
      ? [await diskFile(path)]
      : [await diskFile(path), ...(await folderFiles(dirname(path))).filter(isTokenizer)];
  if (tokenizerPath) {
    // Stands in for the folder's own tokenizer, under the name that says which kind it is.
    const kind = tokenizerPath.endsWith('.json') ? 'tokenizer.json' : 'tokenizer.bin';
    files = [...files.filter((f) => !isTokenizer(f)), await diskFile(tokenizerPath, kind)];
    const configBeside = join(dirname(tokenizerPath), 'tokenizer_config.json');
    if (kind === 'tokenizer.json' && (await stat(configBeside).catch(() => null))) {
      files = [
        ...files.filter((f) => f.name !== 'tokenizer_config.json'),
        await diskFile(configBeside),
      ];
    }
  }
  return loadModelFiles(files, basename(path));
}

/**
 * A model's architecture from disk and its weights read when asked (an HF folder's safetensors a
 * tensor at a time), no tokenizer needed.
 */
export async function openWeightsFromPath(path: string): Promise<WeightSource> {
  const info = await stat(path).catch(() => null);
  if (!info) throw new FormatError(path, 'does not exist');
  const files = info.isDirectory() ? await folderFiles(path) : [await diskFile(path)];
  return openModelWeights(files, basename(path));
}

/** A model's architecture and weights from disk (an HF folder, a .bin or a .gguf), no tokenizer needed. */
export async function loadWeightsFromPath(path: string) {
  const info = await stat(path).catch(() => null);
  if (!info) throw new FormatError(path, 'does not exist');
  const files = info.isDirectory() ? await folderFiles(path) : [await diskFile(path)];
  return { name: basename(path), ...(await loadModelWeights(files, basename(path))) };
}

function isTokenizer(f: ModelFile): boolean {
  return [
    'tokenizer.json',
    'tok512.bin',
    'tokenizer.bin',
    'tokenizer_config.json',
    CHAT_TEMPLATE_FILE,
  ].includes(f.name);
}
