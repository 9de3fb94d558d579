import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Composition } from '../adapters/compose.ts';
import { applyRefusal } from '../adapters/applicable.ts';
import { readPeftAdapter, type PeftAdapter } from '../adapters/peft-read.ts';
import { FormatError } from '../model/errors.ts';

/** `DIR` or `DIR:WEIGHT` (the weight may be negative: `dir:-0.5` subtracts the adapter). */
export function parseAdapterOption(option: string): { dir: string; weight: number } {
  const colon = option.lastIndexOf(':');
  const weight = colon > 0 ? Number(option.slice(colon + 1)) : NaN;
  if (colon > 0 && Number.isFinite(weight)) return { dir: option.slice(0, colon), weight };
  return { dir: option, weight: 1 };
}

export async function readAdapterDir(dir: string): Promise<PeftAdapter> {
  const files = new Map<string, Uint8Array>();
  for (const name of ['adapter_config.json', 'adapter_model.safetensors', 'adapter_model.bin']) {
    const bytes = await readFile(join(dir, name)).catch(() => null);
    if (bytes) files.set(name, new Uint8Array(bytes));
  }
  return readPeftAdapter(files, dir);
}

/**
 * The adapters of `--adapter DIR[:WEIGHT]` options, to apply to the model at run time. Warns on
 * stderr when an adapter names another base model; refuses one whose numbers cannot be applied
 * (NaN, Inf, a scaling beyond float32) unless `force` (`--force`), then warns.
 */
export async function adapterOptions(
  modelName: string,
  options: readonly string[],
  force = false,
): Promise<Composition> {
  const adapters = [];
  for (const option of options) {
    const { dir, weight } = parseAdapterOption(option);
    const adapter = await readAdapterDir(dir);
    const refusal = applyRefusal(adapter);
    if (refusal && !force)
      throw new FormatError('--adapter', `${refusal}; give --force to apply it anyway`);
    if (refusal) console.error(`warning: applying anyway: ${refusal}`);
    if (adapter.baseModel && adapter.baseModel !== modelName)
      console.error(`note: ${dir} was trained on ${adapter.baseModel}; the model is ${modelName}`);
    adapters.push({ adapter, weight });
  }
  return adapters;
}
