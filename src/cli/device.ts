import { errorMessage } from '../errors.ts';
import { acquireGpu, type Gpu } from '../gpu/device.ts';
import { nodeGpuEntry } from '../gpu/node.ts';
import { nodeShaders } from '../gpu/shaders-node.ts';

/**
 * The WebGPU device (Dawn) for a command that can also run on the CPU references: null when
 * `--cpu` asks for the CPU, or when no device can be had, which is said on stderr. Training and
 * the benchmarks need the GPU and acquire it themselves.
 */
export async function gpuOrCpu(command: string, cpu: boolean): Promise<Gpu | null> {
  if (cpu) return null;
  try {
    return await acquireGpu(nodeGpuEntry(), { shaders: nodeShaders });
  } catch (e) {
    const reason = errorMessage(e).split('\n')[0];
    process.stderr.write(
      `lora-studio ${command}: no WebGPU device (${reason}); running on the CPU, slower\n`,
    );
    return null;
  }
}
