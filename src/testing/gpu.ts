import { afterAll, beforeAll } from 'vitest';
import { acquireGpu, type AcquireOptions, type Gpu } from '../gpu/device.ts';
import { nodeGpuEntry } from '../gpu/node.ts';
import { nodeShaders } from '../gpu/shaders-node.ts';
import { gpuCompute, type MergeCompute } from '../merge/compute.ts';
import { cpuCompute } from '../merge/cpu/compute.ts';

/**
 * One real WebGPU device (Dawn; SwiftShader on machines without a GPU) per test file.
 * Call at the top of a file or describe block; the returned getter works inside tests.
 */
export function useGpu(options: Partial<AcquireOptions> = {}): () => Gpu {
  let gpu: Gpu | undefined;
  beforeAll(async () => {
    gpu = await acquireGpu(nodeGpuEntry(), { shaders: nodeShaders, ...options });
  });
  afterAll(() => gpu?.destroy());
  return () => {
    if (!gpu)
      throw new Error('useGpu: the device is not ready (call it at file or describe level)');
    return gpu;
  };
}

/**
 * Where merges and comparisons can run, by name: the GPU, and the CPU references the studio
 * falls back to without WebGPU. Tests run on both with describe.each / it.each.
 */
export function mergeComputes(gpu: () => Gpu): [string, () => MergeCompute][] {
  return [
    ['GPU', () => gpuCompute(gpu())],
    ['CPU', () => cpuCompute],
  ];
}
