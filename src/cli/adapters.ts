import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { adapterTerms, readPeftAdapter, type PeftAdapter } from '../adapters/peft-read.ts';
import type { Gpu } from '../gpu/device.ts';
import { releaseTensor } from '../gpu/tensor.ts';
import type { GpuModel } from '../model/forward.ts';

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
 * Applies `--adapter DIR[:WEIGHT]` options to the model at run time; returns a function that
 * frees their GPU tensors. Warns on stderr when an adapter names another base model.
 */
export async function applyAdapterOptions(
  gpu: Gpu,
  model: GpuModel,
  modelName: string,
  options: readonly string[],
): Promise<() => void> {
  const adapters = [];
  for (const option of options) {
    const { dir, weight } = parseAdapterOption(option);
    const adapter = await readAdapterDir(dir);
    if (adapter.baseModel && adapter.baseModel !== modelName)
      console.error(`note: ${dir} was trained on ${adapter.baseModel}; the model is ${modelName}`);
    adapters.push({ adapter, weight });
  }
  const { terms, overrides, tensors } = await adapterTerms(gpu, model.base, adapters);
  model.setAdapters(terms, overrides);
  return () => {
    releaseTensor(gpu, ...tensors);
  };
}
