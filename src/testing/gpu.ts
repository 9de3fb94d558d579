import { afterAll, beforeAll } from 'vitest';
import { acquireGpu, type AcquireOptions, type Gpu } from '../gpu/device.ts';
import { nodeGpuEntry } from '../gpu/node.ts';
import { nodeShaders } from '../gpu/shaders-node.ts';

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
