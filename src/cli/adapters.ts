import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Composition } from '../adapters/compose.ts';
import { applyRefusal } from '../adapters/applicable.ts';
import { readGgufLora } from '../adapters/gguf-read.ts';
import { readPeftAdapter, type PeftAdapter } from '../adapters/peft-read.ts';
import type { ModelConfig } from '../model/config.ts';
import { FormatError } from '../model/errors.ts';
import { namesModel } from '../model/load.ts';

/** `DIR` or `DIR:WEIGHT` (the weight may be negative: `dir:-0.5` subtracts the adapter). */
export function parseAdapterOption(option: string): { dir: string; weight: number } {
  const colon = option.lastIndexOf(':');
  const weight = colon > 0 ? Number(option.slice(colon + 1)) : NaN;
  if (colon > 0 && Number.isFinite(weight)) return { dir: option.slice(0, colon), weight };
  return { dir: option, weight: 1 };
}

const isGguf = (path: string) => path.toLowerCase().endsWith('.gguf');

/** A PEFT adapter folder. */
export async function readAdapterDir(dir: string): Promise<PeftAdapter> {
  // A GGUF LoRA's tensor names and q/k rows mean something only against its base model.
  if (isGguf(dir))
    throw new FormatError(
      dir,
      'is a GGUF LoRA, which is read against its base model: generate, perplexity and logits take it as --adapter (they load the model); here, give a PEFT adapter folder',
    );
  return readPeftAdapter(await adapterDirFiles(dir), dir);
}

/** The files of a PEFT adapter folder that exist: config, weights, model card. */
export async function adapterDirFiles(dir: string): Promise<Map<string, Uint8Array>> {
  const files = new Map<string, Uint8Array>();
  const names = [
    'adapter_config.json',
    'adapter_model.safetensors',
    'adapter_model.bin',
    'README.md',
  ];
  for (const name of names) {
    const bytes = await readFile(join(dir, name)).catch(() => null);
    if (bytes) files.set(name, new Uint8Array(bytes));
  }
  return files;
}

async function readGgufFile(path: string): Promise<Uint8Array> {
  const bytes = await readFile(path).catch(() => {
    throw new FormatError(path, 'cannot be read (does the file exist?)');
  });
  return new Uint8Array(bytes);
}

/**
 * The adapters of `--adapter PATH[:WEIGHT]` options (a PEFT folder, or a llama.cpp GGUF LoRA file
 * read against the loaded model's config), to apply to the model at run time. Warns on stderr when
 * an adapter names another base model; refuses one whose numbers cannot be applied (NaN, Inf, a
 * scaling beyond float32) unless `force` (`--force`), then warns.
 */
export async function adapterOptions(
  model: { name: string; hubId?: string; config: ModelConfig },
  options: readonly string[],
  force = false,
): Promise<Composition> {
  const adapters = [];
  for (const option of options) {
    const { dir, weight } = parseAdapterOption(option);
    const adapter = isGguf(dir)
      ? readGgufLora(await readGgufFile(dir), dir, model.config)
      : await readAdapterDir(dir);
    const refusal = applyRefusal(adapter);
    if (refusal && !force)
      throw new FormatError('--adapter', `${refusal}; give --force to apply it anyway`);
    if (refusal) console.error(`warning: applying anyway: ${refusal}`);
    if (adapter.baseModel && !namesModel(model, adapter.baseModel))
      console.error(`note: ${dir} was trained on ${adapter.baseModel}; the model is ${model.name}`);
    adapters.push({ adapter, weight });
  }
  return adapters;
}
