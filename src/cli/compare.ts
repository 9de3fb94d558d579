import { gpuCompute } from '../merge/compute.ts';
import { cpuCompute } from '../merge/cpu/compute.ts';
import { compareAdapters } from '../analysis/diagnostics.ts';
import { readAdapterDir } from './adapters.ts';
import { parseOptions, UsageError } from './args.ts';
import { gpuOrCpu } from './device.ts';

/**
 * `lora-studio compare ADAPTER_DIR…`: per module and per pair of adapters, ‖ΔW‖, cosine,
 * subspace overlap, sign conflicts and effective ranks, with whole-adapter summaries, as JSON
 * on stdout (src/analysis/diagnostics.ts describes every field). On the CPU with `--cpu` or without a
 * GPU.
 */
export async function compare(args: string[]): Promise<number> {
  const { positionals, flags } = parseOptions(args, {
    values: [],
    flags: ['cpu'],
    positionals: true,
  });
  if (positionals.length === 0) throw new UsageError('at least one adapter folder is required');
  const adapters = await Promise.all(positionals.map(readAdapterDir));
  const gpu = await gpuOrCpu('compare', flags.has('cpu'));
  try {
    const compute = gpu ? gpuCompute(gpu) : cpuCompute;
    console.log(JSON.stringify(await compareAdapters(compute, adapters)));
    return 0;
  } finally {
    gpu?.destroy();
  }
}
