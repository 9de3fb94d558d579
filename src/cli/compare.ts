import { acquireGpu } from '../gpu/device.ts';
import { nodeGpuEntry } from '../gpu/node.ts';
import { nodeShaders } from '../gpu/shaders-node.ts';
import { compareAdapters } from '../merge/diagnostics.ts';
import { readAdapterDir } from './adapters.ts';
import { parseOptions } from './args.ts';

/**
 * `lora-studio compare ADAPTER_DIR…`: per module and per pair of adapters, ‖ΔW‖, cosine,
 * subspace overlap, sign conflicts and effective ranks, with whole-adapter summaries, as JSON
 * on stdout (src/merge/diagnostics.ts describes every field).
 */
export async function compare(args: string[]): Promise<number> {
  const { positionals } = parseOptions(args, { values: [], positionals: true });
  if (positionals.length === 0) throw new Error('at least one adapter folder is required');
  const adapters = await Promise.all(positionals.map(readAdapterDir));
  const gpu = await acquireGpu(nodeGpuEntry(), { shaders: nodeShaders });
  try {
    console.log(JSON.stringify(await compareAdapters(gpu, adapters)));
    return 0;
  } finally {
    gpu.destroy();
  }
}
