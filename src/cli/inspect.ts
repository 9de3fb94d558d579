import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { adapterFiles } from '../adapters/import.ts';
import { inspectAdapter, readForInspection } from '../analysis/inspect.ts';
import { FormatError } from '../model/errors.ts';
import { checkIntruderSettings } from '../analysis/intruder-settings.ts';
import {
  adapterIntrusions,
  adapterIntrusionsCpu,
  INTRUDER_DEFAULTS,
  type IntruderSettings,
  type ModuleIntrusion,
} from '../analysis/intruders.ts';
import {
  misfit,
  readPeftAdapter,
  shapeMismatches,
  type PeftAdapter,
} from '../adapters/peft-read.ts';
import { createGpuModel } from '../model/forward.ts';
import { loadModelFromPath } from '../model/load-node.ts';
import { gpuOrCpu } from './device.ts';
import { numberOption, parseOptions, UsageError } from './args.ts';

/** Exit code for input that is missing or malformed, told apart from failures of the tool (1). */
const ADAPTER_FILES = ['adapter_config.json', 'adapter_model.safetensors', 'adapter_model.bin'];

/** The adapter files of a folder, or of a .zip holding one (src/adapters/import.ts). */
async function readAdapterPath(path: string): Promise<Map<string, Uint8Array>> {
  const info = await stat(path).catch(() => null);
  if (!info) throw new FormatError(path, 'does not exist');
  if (info.isFile() && path.toLowerCase().endsWith('.zip'))
    return adapterFiles([{ name: path, bytes: new Uint8Array(await readFile(path)) }]);
  if (!info.isDirectory()) throw new FormatError(path, 'is neither an adapter folder nor a .zip');
  const files = new Map<string, Uint8Array>();
  for (const name of ADAPTER_FILES) {
    const bytes = await readFile(join(path, name)).catch(() => null);
    if (bytes) files.set(name, new Uint8Array(bytes));
  }
  return files;
}

/**
 * `lora-studio inspect PATH [--model MODEL]`: a PEFT LoRA adapter (folder or .zip) summarised as
 * JSON on stdout (src/analysis/inspect.ts describes every field); with the base model, also its
 * intruder dimensions per module and layer (src/analysis/intruders.ts; `--intruder-k`,
 * `--intruder-threshold`, `--cpu`). Missing or malformed input exits with 2 and one line on stderr.
 */
export async function inspect(args: string[]): Promise<number> {
  const { values, flags, positionals } = parseOptions(args, {
    values: ['model', 'tokenizer', 'intruder-k', 'intruder-threshold'],
    flags: ['cpu'],
    positionals: true,
  });
  if (positionals.length !== 1) throw new UsageError('give one adapter folder or .zip');
  const [path] = positionals;
  const files = await readAdapterPath(path);
  const adapter = readForInspection(files, path);
  const inspection = await inspectAdapter(adapter);
  const modelPath = values.get('model');
  if (!modelPath) {
    if (values.has('intruder-k') || values.has('intruder-threshold'))
      throw new UsageError('intruder dimensions are measured against the base: give --model');
    console.log(JSON.stringify(inspection, null, 2));
    return 0;
  }
  const settings: IntruderSettings = {
    k: numberOption(values, 'intruder-k', INTRUDER_DEFAULTS.k),
    threshold: numberOption(values, 'intruder-threshold', INTRUDER_DEFAULTS.threshold),
  };
  // Before the model loads: a bad setting is refused at once.
  checkIntruderSettings(settings);
  const intruders = await measureIntruders(
    readPeftAdapter(files, path),
    modelPath,
    values.get('tokenizer'),
    settings,
    flags.has('cpu'),
  );
  console.log(JSON.stringify({ ...inspection, intruders }, null, 2));
  return 0;
}

/** `intruders` of inspect's JSON: the settings, the total, per layer and per module. */
async function measureIntruders(
  adapter: PeftAdapter,
  modelPath: string,
  tokenizer: string | undefined,
  settings: IntruderSettings,
  cpu: boolean,
) {
  const loaded = await loadModelFromPath(modelPath, tokenizer);
  const problems = shapeMismatches(adapter, loaded.config);
  if (problems.length > 0) throw new FormatError(adapter.name, misfit(problems));
  const gpu = await gpuOrCpu('inspect', cpu);
  let modules: ModuleIntrusion[];
  if (gpu) {
    const model = createGpuModel(gpu, loaded.config, loaded.weights);
    try {
      modules = await adapterIntrusions(gpu, model.base, adapter, settings);
    } finally {
      model.dispose();
      gpu.destroy();
    }
  } else modules = adapterIntrusionsCpu(loaded.weights, adapter, settings);
  const layerOf = (path: string) => Number(/\.(\d+)\./.exec(path)?.[1] ?? NaN);
  const byLayer = new Map<number, number>();
  for (const m of modules)
    byLayer.set(layerOf(m.path), (byLayer.get(layerOf(m.path)) ?? 0) + m.count);
  return {
    ...settings,
    total: modules.reduce((n, m) => n + m.count, 0),
    byLayer: [...byLayer].map(([layer, count]) => ({ layer, count })),
    modules,
  };
}
