import { create, globals } from 'webgpu';
import { vulkanEnv } from './node-env.ts';

// Dawn's entry point must stay referenced for the life of the process:
// letting it be garbage-collected segfaulted Node (exit 139) in our tests.
let dawn: GPU | undefined;

/**
 * The WebGPU entry point in Node, through Dawn. Installs the WebGPU globals
 * (GPUBufferUsage, GPUMapMode, …) that browser code expects.
 */
export function nodeGpuEntry(): GPU {
  if (!dawn) {
    const { LD_LIBRARY_PATH, ...settable } = vulkanEnv();
    // The Vulkan loader reads these when Dawn starts, so setting them now is enough;
    // the dynamic linker reads LD_LIBRARY_PATH only at process start.
    if (LD_LIBRARY_PATH) {
      throw new Error(
        `Dawn needs a Vulkan loader: start Node with LD_LIBRARY_PATH=${LD_LIBRARY_PATH} ` +
          '(the lora-studio CLI and the test runner do this themselves), or install libvulkan1.',
      );
    }
    Object.assign(process.env, settable);
    Object.assign(globalThis, globals);
    dawn = create([]);
  }
  return dawn;
}
