import { acquireGpu, type Gpu } from '../gpu/device.ts';
import { GpuError } from '../gpu/errors.ts';
import type { ShaderLibrary } from '../gpu/shaders.ts';
import { persistTuning, restoreTuning, type TuningStore } from '../gpu/tuning.ts';
import { describeTile } from '../linalg/matmul.ts';
import { REPRESENTATIVE_PROBLEMS, tuneMatmul } from '../linalg/matmul-tuning.ts';
import { selfCheck } from '../linalg/self-check.ts';
import type { GpuStatus, StudioApi } from './api.ts';

export interface StudioEnvironment {
  /** `navigator.gpu`, or undefined where the browser has no WebGPU. */
  gpu: GPU | undefined;
  shaders: ShaderLibrary;
  /** False on http:// pages other than localhost, where browsers hide WebGPU. */
  secureContext: boolean;
  /** Where tuned kernel parameters persist (IndexedDB in the browser). */
  tuningStore: TuningStore;
}

/** The Studio API over one GPU device; the worker exposes it, Node tests call it directly. */
export function createStudio(env: StudioEnvironment): StudioApi {
  let gpu: Gpu | undefined;
  let notify: (status: GpuStatus) => void = () => undefined;

  async function acquire(): Promise<GpuStatus> {
    if (!env.gpu) {
      return env.secureContext
        ? { state: 'unavailable', reason: 'no-webgpu', detail: 'navigator.gpu is undefined' }
        : {
            state: 'unavailable',
            reason: 'insecure-context',
            detail: 'WebGPU needs https:// or localhost',
          };
    }
    try {
      gpu = await acquireGpu(env.gpu, {
        shaders: env.shaders,
        onLost: (info) => {
          gpu = undefined;
          notify({ state: 'lost', reason: info.reason, detail: info.message });
        },
      });
      // Parameters tuned in an earlier session; a store that fails only costs speed.
      await restoreTuning(gpu, env.tuningStore).catch(() => undefined);
      return { state: 'ready', adapter: gpu.adapter };
    } catch (e) {
      const reason =
        e instanceof GpuError && e.context === 'requestAdapter' ? 'no-adapter' : 'device-failed';
      return { state: 'unavailable', reason, detail: e instanceof Error ? e.message : String(e) };
    }
  }

  function requireGpu(): Gpu {
    if (!gpu)
      throw new GpuError(
        'No GPU device: connect first (or reconnect after a loss).',
        'studio',
        'unavailable',
      );
    return gpu;
  }

  return {
    async connect(onStatus) {
      notify = onStatus;
      if (gpu) return { state: 'ready', adapter: gpu.adapter };
      return acquire();
    },
    async reconnect() {
      gpu?.destroy();
      gpu = undefined;
      const status = await acquire();
      notify(status);
      return status;
    },
    async selfCheck() {
      return selfCheck(requireGpu());
    },
    async tuneMatmul(problems = REPRESENTATIVE_PROBLEMS) {
      const device = requireGpu();
      const tuned = [];
      for (const problem of problems) {
        const tile = await tuneMatmul(device, problem);
        tuned.push({
          problem: problem.name,
          tile: describeTile(tile),
        });
      }
      await persistTuning(device, env.tuningStore);
      return tuned;
    },
  };
}
