// Router folders from the command line: reading one with its adapters (found by the paths
// router.json records, relative to the folder, and checked against their SHA-256), and applying
// one to a loaded model for generate, perplexity and logits (`--router DIR`).
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { GpuAdaptedModel } from '../adapters/adapted-model.ts';
import { readPeftAdapter, type PeftAdapter } from '../adapters/peft-read.ts';
import { sha256Hex } from '../hash.ts';
import type { ModelConfig } from '../model/config.ts';
import { FormatError } from '../model/errors.ts';
import { namesModel } from '../model/load.ts';
import { parseRouterJson, readRouter, ROUTER_JSON, ROUTER_WEIGHTS } from '../routing/files.ts';
import { routingMode } from '../routing/modes.ts';
import { RoutedAdapter, type RouterState } from '../routing/router.ts';
import { adapterDirFiles } from './adapters.ts';
import { UsageError } from './args.ts';

async function readIn(dir: string, name: string): Promise<Uint8Array> {
  const bytes = await readFile(join(dir, name)).catch(() => {
    throw new FormatError(dir, `has no ${name} (is it a router folder written by route?)`);
  });
  return new Uint8Array(bytes);
}

/** A router folder's state for the model, its adapters read and checked. */
export async function readRouterDir(
  dir: string,
  model: { name: string; hubId?: string; config: ModelConfig },
): Promise<RouterState> {
  const json = parseRouterJson(await readIn(dir, ROUTER_JSON), join(dir, ROUTER_JSON));
  const weights = await readIn(dir, ROUTER_WEIGHTS);
  if (json.base_model_name_or_path && !namesModel(model, json.base_model_name_or_path))
    console.error(
      `note: ${dir} was trained on ${json.base_model_name_or_path}; the model is ${model.name}`,
    );
  const adapters: PeftAdapter[] = [];
  if (routingMode(json.mode).experts === 'adapters')
    for (const expert of json.experts) {
      if (!expert.path)
        throw new FormatError(join(dir, ROUTER_JSON), `expert "${expert.name}" has no path`);
      const where = resolve(dir, expert.path);
      const files = await adapterDirFiles(where);
      const tensors = files.get('adapter_model.safetensors');
      if (!tensors)
        throw new FormatError(
          where,
          `has no adapter_model.safetensors: the router's expert "${expert.name}" is not there`,
        );
      if (expert.sha256 && (await sha256Hex(tensors)) !== expert.sha256)
        throw new FormatError(
          where,
          `is not the adapter "${expert.name}" the router was trained with (its SHA-256 differs from router.json's)`,
        );
      adapters.push(readPeftAdapter(files, expert.name));
    }
  return readRouter(json, weights, model.config, adapters);
}

/**
 * `--router DIR` on a loaded model: its routed terms replace any adapters. Returns what to
 * release afterwards. Routing runs on the GPU only.
 */
export async function applyRouterOption(
  dir: string | undefined,
  model: { name: string; hubId?: string; config: ModelConfig },
  adapted: { where: 'gpu' | 'cpu' } & Partial<Pick<GpuAdaptedModel, 'gpu' | 'model'>>,
  adapterOptions: readonly string[],
): Promise<RoutedAdapter | null> {
  if (dir === undefined) return null;
  if (adapterOptions.length > 0)
    throw new UsageError('--router brings its own adapters: give --router or --adapter, not both');
  if (adapted.where !== 'gpu' || !adapted.gpu || !adapted.model)
    throw new UsageError('--router runs on the GPU (WebGPU): not with --cpu or without a device');
  const routed = RoutedAdapter.create(adapted.gpu, await readRouterDir(dir, model), false);
  adapted.model.setAdapters(routed.terms());
  return routed;
}
